"""Build constructed bi-temporal change pairs from the Olinda Landsat 7 chips (change detection example).

    python examples/make_change_pairs.py

Only one real date of the scene is at hand, so the second date is *constructed*, and says so:

* **date 1** is the real chip;
* **date 2** is the same chip with (a) a radiometric difference everywhere — per-band gain
  in [0.95, 1.05], offset in [−2, 2] DN and Gaussian noise of 1 DN, so unchanged pixels are
  not identical — and (b) "new construction": in 1–3 smooth random blobs per chip (two chips
  in three), vegetated pixels and water (land reclamation on the coast) take the spectra of
  built-up pixels drawn from the same split;
* **change mask**: 1 where a vegetation or water pixel was replaced, 0 elsewhere.

Writes ``examples/data/olinda_l7_cd/{train,val}/images/<chip>.tif`` (12 bands: the 6 bands of
date 1, then the 6 of date 2, uint8, the chip's georeference) and ``…/labels/<chip>_label.tif``
(uint8 0/1). Deterministic (seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
SOURCE, TARGET = ROOT / "examples/data/olinda_l7", ROOT / "examples/data/olinda_l7_cd"
WATER, VEGETATION, BUILT_UP = 0, 1, 2


def blobs(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """Union of ``count`` random ellipses with wobbly edges, as a bool ``[size, size]`` mask."""
    yy, xx = np.mgrid[:size, :size].astype(float)
    mask = np.zeros((size, size), bool)
    for _ in range(count):
        cy, cx = rng.uniform(8, size - 8, 2)
        ry, rx = rng.uniform(5, 14, 2)
        angle = np.arctan2(yy - cy, xx - cx)
        wobble = 1 + 0.25 * np.sin(3 * angle + rng.uniform(0, 2 * np.pi))
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= wobble**2
    return mask


def main() -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        images = sorted((SOURCE / split / "images").glob("*.tif"))
        if split == "train":
            images = images[::2]  # half the overlapping training chips keep the example small
        built = []  # built-up spectra of this split, to draw new construction from
        for path in images:
            with rasterio.open(path) as src, rasterio.open(SOURCE / split / "labels" / path.name.replace(".tif", "_label.tif")) as lab:
                data, labels = src.read(), lab.read(1)
            built.append(data[:, labels == BUILT_UP].T)
        built = np.concatenate(built)
        (TARGET / split / "images").mkdir(parents=True, exist_ok=True)
        (TARGET / split / "labels").mkdir(parents=True, exist_ok=True)
        changed_pixels = 0
        for path in images:
            with rasterio.open(path) as src, rasterio.open(SOURCE / split / "labels" / path.name.replace(".tif", "_label.tif")) as lab:
                date1, labels, profile, names = src.read().astype(float), lab.read(1), src.profile, src.descriptions
            size = date1.shape[-1]
            gain = rng.uniform(0.95, 1.05, (6, 1, 1))
            offset = rng.uniform(-2, 2, (6, 1, 1))
            date2 = date1 * gain + offset + rng.normal(0, 1, date1.shape)
            change = np.zeros(labels.shape, np.uint8)
            if rng.random() < 2 / 3:
                area = blobs(rng, size, int(rng.integers(1, 4))) & np.isin(labels, (WATER, VEGETATION))
                picks = built[rng.integers(0, len(built), int(area.sum()))].T.astype(float)
                date2[:, area] = picks * gain[:, :, 0] + offset[:, :, 0] + rng.normal(0, 1, picks.shape)
                change[area] = 1
            changed_pixels += int(change.sum())
            pair = np.concatenate([date1, np.clip(np.rint(date2), 0, 255)]).astype(np.uint8)
            out = {**profile, "count": 12, "dtype": "uint8", "compress": "deflate", "predictor": 2}
            with rasterio.open(TARGET / split / "images" / path.name, "w", **out) as dst:
                dst.write(pair)
                dst.descriptions = tuple(f"{b}_t{t}" for t in (1, 2) for b in names)
            label_profile = {**profile, "count": 1, "dtype": "uint8", "compress": "deflate"}
            with rasterio.open(TARGET / split / "labels" / path.name.replace(".tif", "_label.tif"), "w", **label_profile) as dst:
                dst.write(change[None])
        total = len(images) * size * size
        print(f"{split}: {len(images)} pairs, {changed_pixels} changed pixels ({changed_pixels / total:.1%})")


if __name__ == "__main__":
    main()
