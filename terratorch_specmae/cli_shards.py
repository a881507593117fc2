"""The deprecated ``specmae-shards`` command: ``specmae shards`` (:mod:`terratorch_specmae.cli.shards`)."""

from terratorch_specmae.cli.shards import corpus_from_config
from terratorch_specmae.cli.specmae import shards_main as main

__all__ = ["corpus_from_config", "main"]

if __name__ == "__main__":
    main()
