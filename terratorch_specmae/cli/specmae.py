"""The ``specmae`` command: one tool with a subcommand for each task.

    specmae examples             the shipped configs and example data → a new folder
    specmae export               a pretraining checkpoint → a save_pretrained folder
    specmae convert-spectralgpt  a SpectralGPT(+) .pth → a save_pretrained folder
    specmae export-onnx          a fine-tuned .ckpt → a checked .onnx / .pt2 file
    specmae shards               a pretraining corpus → LitData shards
    specmae synthetic-hsi        a synthetic hyperspectral scene
    specmae catalogue            the pretrained weights and whether they are cached
    specmae download             catalogue weights → the cache

``specmae <command> --help`` describes each. A user error (a bad path, an output that exists, a
checkpoint of the wrong kind, an unknown catalogue name, weights missing while offline …) ends with
exit status 2 and one line on standard error; see :mod:`terratorch_specmae.cli.command`.

The earlier commands ``specmae-weights <export|convert-spectralgpt|export-onnx>`` and
``specmae-shards`` still run the same code, after a line on standard error naming the new command;
they will be removed in the next release.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from terratorch_specmae import __version__
from terratorch_specmae.cli import catalogue, shards, weights
from terratorch_specmae.cli.command import Command, run
from terratorch_specmae.cli.examples import EXAMPLES
from terratorch_specmae.cli.synthetic_hsi import SYNTHETIC_HSI

COMMANDS: tuple[Command, ...] = (EXAMPLES, *weights.COMMANDS, shards.SHARDS, SYNTHETIC_HSI, *catalogue.COMMANDS)


def build_parser(prog: str = "specmae", commands: Sequence[Command] = COMMANDS):
    """The tool's parser, with a subparser per command; returns it and ``{name: (command, subparser)}``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="terratorch-specmae's command-line tool: copy the configs and example data, export and convert "
        "weights, export fine-tuned models for deployment, write corpus shards and synthetic scenes, list and download "
        "the pretrained weights.",
        epilog="Run `%(prog)s <command> --help` for a command's arguments.",
    )
    parser.add_argument("--version", action="version", version=f"terratorch-specmae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>", title="commands")
    parsers = {}
    for command in commands:
        subparser = sub.add_parser(
            command.name, help=command.summary, description=command.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        command.add_arguments(subparser)
        parsers[command.name] = (command, subparser)
    return parser, parsers


def main(argv: Sequence[str] | None = None, prog: str = "specmae", commands: Sequence[Command] = COMMANDS) -> None:
    """``specmae <command> …`` (``argv``: the arguments after the program name; default ``sys.argv[1:]``)."""
    parser, parsers = build_parser(prog, commands)
    args = parser.parse_args(argv)
    command, subparser = parsers[args.command]
    run(command, args, subparser.prog)


def _deprecated(old: str, new: str) -> None:
    print(f"{old} is deprecated and will be removed in the next release; use `{new}` instead.", file=sys.stderr)


def weights_main(argv: Sequence[str] | None = None) -> None:
    """The deprecated ``specmae-weights <export|convert-spectralgpt|export-onnx> …``: ``specmae <command> …``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = [c.name for c in weights.COMMANDS]
    _deprecated("specmae-weights", f"specmae {argv[0] if argv and argv[0] in names else '|'.join(names)}")
    main(argv, prog="specmae-weights", commands=weights.COMMANDS)


def shards_main(argv: Sequence[str] | None = None) -> None:
    """The deprecated ``specmae-shards …``: ``specmae shards …``."""
    _deprecated("specmae-shards", "specmae shards")
    parser = shards.SHARDS.parser("specmae-shards")
    run(shards.SHARDS, parser.parse_args(argv), parser.prog)


if __name__ == "__main__":
    main()
