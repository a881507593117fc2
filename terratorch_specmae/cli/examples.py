"""``specmae examples``: the shipped configs and example data, copied into a new folder.

The wheel carries ``configs/`` and ``examples/data/`` as package data under
``terratorch_specmae/_shipped/`` (pyproject.toml maps them there). This command copies both into a
folder laid out as the repository is, so the configs' relative data paths
(``examples/data/olinda_l7/…``) resolve from it::

    specmae examples my-specmae && cd my-specmae && terratorch fit -c configs/specmae_seg.yaml

The files are read with :mod:`importlib.resources`; in a source checkout (an editable install, or
``PYTHONPATH`` on a clone), where the package holds no ``_shipped`` folder, they are read from the
repository itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from terratorch_specmae.atomic import atomic_folder, atomic_write_bytes
from terratorch_specmae.cli.command import Command

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # Python >= 3.11 (importlib.abc's before)

SHIPPED = ("configs", "examples/data")  # what the wheel ships, by its path in the repository
SKIPPED = ("__pycache__",)  # byte code pip or Python wrote beside the configs' plugin module
MAIN_CONFIG = "configs/specmae_seg.yaml"


def shipped_root() -> Traversable:
    """The folder holding ``configs/`` and ``examples/data/``: the installed package's ``_shipped``
    folder, or the repository root of a source checkout."""
    packaged = resources.files("terratorch_specmae").joinpath("_shipped")
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if all(checkout.joinpath(part).is_dir() for part in SHIPPED):
        return checkout
    raise FileNotFoundError(
        "This installation of terratorch-specmae holds no configs or example data (expected "
        f"{str(packaged)!r}); reinstall it from a wheel or a clone of the repository."
    )


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name in SKIPPED or item.name.endswith(".pyc"):
            continue
        path = f"{prefix}/{item.name}"
        if item.is_dir():
            yield from _walk(item, path)
        else:
            yield path, item


def shipped_files() -> list[tuple[str, Traversable]]:
    """Every shipped file as (its path relative to the copy, e.g. ``configs/specmae_seg.yaml``, the resource)."""
    root = shipped_root()
    files = []
    for part in SHIPPED:
        folder = root
        for name in part.split("/"):
            folder = folder.joinpath(name)
        files.extend(_walk(folder, part))
    return files


def copy_examples(folder: str | Path) -> list[str]:
    """Copy the configs and example data into ``folder`` (new, or empty); returns the paths written.

    A new folder appears only once complete (:func:`~terratorch_specmae.atomic.atomic_folder`); an
    existing folder with anything in it is refused (``OutputExistsError``) and left as it is."""
    folder = Path(folder)
    files = shipped_files()
    with atomic_folder(folder, exclusive=True) as target:
        for path, resource in files:
            if target == folder:  # an existing empty folder: each file appears complete, none is replaced
                atomic_write_bytes(target / path, resource.read_bytes(), exclusive=True)
            else:  # a temporary folder, renamed onto ``folder`` at the end
                (target / path).parent.mkdir(parents=True, exist_ok=True)
                (target / path).write_bytes(resource.read_bytes())
    return [path for path, _ in files]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="a new (or empty) folder to copy the configs and example data into")


def write(args: argparse.Namespace) -> None:
    written = copy_examples(args.folder)
    configs = sum(path.startswith("configs/") for path in written)
    print(
        f"wrote {args.folder}: {configs} configs in configs/, {len(written) - configs} example data files in "
        f"examples/data/. Next: cd {args.folder} && terratorch fit -c {MAIN_CONFIG}"
    )


EXAMPLES = Command(
    "examples",
    "copy the shipped configs and example data into a new folder",
    "Copy the configs (configs/) and the example data they read (examples/data/: Landsat 7 and Sentinel-2\n"
    "chips, a synthetic hyperspectral scene) into a new or empty folder, laid out as in the repository, so\n"
    "that the configs run from it. A folder with anything in it is refused.\n\n"
    "  specmae examples my-specmae && cd my-specmae && terratorch fit -c configs/specmae_seg.yaml",
    add_arguments,
    write,
)
