"""What the wheel ships (pyproject.toml's setuptools tables): every package of terratorch_specmae, and the
configs and example data mapped under terratorch_specmae/_shipped/, where ``specmae examples`` reads them.
CI (.ci/run) builds the wheel, installs it in a fresh environment and runs the main config from a copy."""

from __future__ import annotations

from glob import glob
from pathlib import Path

import pytest
from setuptools import find_packages

from terratorch_specmae.cli.examples import SHIPPED

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def shipped_package(path: str) -> str:
    return "terratorch_specmae._shipped." + path.replace("/", ".")


def test_the_package_list_holds_every_package_and_the_shipped_folders():
    """The packages are listed (setuptools' discovery does not combine with mapped folders): a new
    subpackage missing from the list would be missing from the wheel."""
    code = find_packages(str(ROOT), include=["terratorch_specmae", "terratorch_specmae.*"])
    assert sorted(SETUPTOOLS["packages"]) == sorted([*code, *map(shipped_package, SHIPPED)])


def test_the_shipped_folders_are_mapped_from_the_repository_with_all_their_files():
    assert SETUPTOOLS["package-dir"] == {shipped_package(path): path for path in SHIPPED}
    data = SETUPTOOLS["package-data"]
    for path in SHIPPED:
        files = {p for p in (ROOT / path).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        patterns = data[shipped_package(path)]
        matched = {Path(f) for pattern in patterns for f in glob(f"{ROOT / path}/{pattern}", recursive=True)}
        assert files and files <= matched, (path, sorted(files - matched))  # setuptools' globbing, recursive
