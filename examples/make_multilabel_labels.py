"""Write multi-label tables for the Olinda chips: a class is present where it covers >= 10 % of a chip.

    python examples/make_multilabel_labels.py

Reads ``examples/data/olinda_l7/{train,val}/labels/*_label.tif`` (rule-derived: 0 water,
1 vegetation, 2 built-up; see examples/data/README.md) and writes
``examples/data/olinda_l7/{train,val}/multilabel.csv`` (``filename,water,vegetation,built_up``)
for ``configs/specmae_multilabel.yaml``. Deterministic.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("water", "vegetation", "built_up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-fraction", type=float, default=0.1)
    args = parser.parse_args()
    for split in ("train", "val"):
        folder = ROOT / "examples/data/olinda_l7" / split
        rows, counts = [], np.zeros(len(CLASSES), int)
        for label_path in sorted((folder / "labels").glob("*_label.tif")):
            with rasterio.open(label_path) as src:
                labels = src.read(1)
            present = [int((labels == k).mean() >= args.min_fraction) for k in range(len(CLASSES))]
            counts += present
            rows.append([label_path.name.replace("_label", ""), *present])
        with (folder / "multilabel.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["filename", *CLASSES], *rows])
        print(f"{split}: {len(rows)} chips; chips per label {dict(zip(CLASSES, counts.tolist(), strict=True))}")


if __name__ == "__main__":
    main()
