"""``specmae synthetic-hsi``: a synthetic hyperspectral + elevation scene with labels, as GeoTIFFs."""

from __future__ import annotations

from terratorch_specmae.cli.command import Command
from terratorch_specmae.datamodules.synthetic_hsi import add_arguments, write

SYNTHETIC_HSI = Command(
    "synthetic-hsi",
    "write a synthetic hyperspectral scene with labels",
    "Write a small, physically plausible hyperspectral + DSM scene with sparse labels (Houston-like classes)\n"
    "as hsi.tif, aux.tif, labels.tif, split.tif and scene.json. Synthetic: for examples and tests, never for\n"
    "benchmarking accuracy.\n\n"
    "  specmae synthetic-hsi examples/data/hsi_synthetic --size 96 --bands 48",
    add_arguments,
    write,
)
