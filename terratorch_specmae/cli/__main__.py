"""``python -m terratorch_specmae.cli``: the ``specmae`` command."""

from terratorch_specmae.cli.specmae import main

main()
