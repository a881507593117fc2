"""Write object boxes for the Olinda chips (object detection example: water bodies and green spaces).

    python examples/make_detection_boxes.py

Reads ``examples/data/olinda_l7/{train,val}/labels/*_label.tif`` (rule-derived: 0 water,
1 vegetation, 2 built-up; see examples/data/README.md). In each chip, the objects are the
connected regions (8-neighbourhood) of water and of vegetation after a 3 × 3 binary opening
(which drops single-pixel specks and thin bridges), kept when they cover at least
``MIN_PIXELS`` pixels. Each object's box is its pixel extent, written in TerraTorch's generic
detection format — ``{"boxes": [[x1, y1, x2, y2], ...], "labels": [...]}``, pixel corners
(x2, y2 exclusive) — to ``examples/data/olinda_l7/{train,val}/boxes/<chip>.json`` for
``configs/specmae_det.yaml``. Labels start at 1 (torchvision's detectors keep 0 for background):
1 water body, 2 green space. Chips without objects get empty lists. Deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {1: ("water body", 0), 2: ("green space", 1)}  # box label: (name, rule-label value)
MIN_PIXELS = 20


def objects(labels: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """Boxes ``[x1, y1, x2, y2]`` and labels of the objects in one label chip."""
    boxes, names = [], []
    for box_label, (_, value) in CLASSES.items():
        region = ndimage.binary_opening(labels == value, structure=np.ones((3, 3), bool))
        components, _ = ndimage.label(region, structure=np.ones((3, 3), bool))
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            if (components[window] == index).sum() >= MIN_PIXELS:
                rows, cols = window
                boxes.append([cols.start, rows.start, cols.stop, rows.stop])
                names.append(box_label)
    return boxes, names


def main() -> None:
    for split in ("train", "val"):
        folder = ROOT / "examples/data/olinda_l7" / split
        (folder / "boxes").mkdir(exist_ok=True)
        counts = dict.fromkeys(CLASSES, 0)
        for path in sorted((folder / "labels").glob("*_label.tif")):
            with rasterio.open(path) as src:
                boxes, labels = objects(src.read(1))
            for label in labels:
                counts[label] += 1
            name = path.name.replace("_label.tif", ".json")
            (folder / "boxes" / name).write_text(json.dumps({"boxes": boxes, "labels": labels}) + "\n")
        print(f"{split}: " + ", ".join(f"{CLASSES[k][0]} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
