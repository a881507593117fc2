"""Write binary water masks for the Olinda chips (object extraction example: water bodies).

    python examples/make_water_masks.py

Reads ``examples/data/olinda_l7/{train,val}/labels/*_label.tif`` (rule-derived: 0 water,
1 vegetation, 2 built-up; see examples/data/README.md) and writes
``examples/data/olinda_l7/{train,val}/water/<chip>_water.tif`` (uint8: 1 water, 0 other, same
georeference) for ``configs/specmae_objext.yaml``. Deterministic.
"""

from __future__ import annotations

from pathlib import Path

import rasterio

ROOT = Path(__file__).resolve().parents[1]
WATER = 0


def main() -> None:
    for split in ("train", "val"):
        folder = ROOT / "examples/data/olinda_l7" / split
        (folder / "water").mkdir(exist_ok=True)
        water_pixels = total = 0
        for path in sorted((folder / "labels").glob("*_label.tif")):
            with rasterio.open(path) as src:
                mask, profile = (src.read(1) == WATER).astype("uint8"), src.profile
            with rasterio.open(folder / "water" / path.name.replace("_label", "_water"), "w", **profile) as dst:
                dst.write(mask, 1)
            water_pixels, total = water_pixels + int(mask.sum()), total + mask.size
        print(f"{split}: water {water_pixels} of {total} pixels ({water_pixels / total:.1%})")


if __name__ == "__main__":
    main()
