"""Build the small example datasets in ``examples/data/`` from the real scenes in ``../shared/data``.

Run from the repository root: ``python examples/make_example_data.py [SOURCE_DIR]``. The output is
deterministic. See ``examples/data/README.md`` for what each dataset is and how its labels were made.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from rasterio.windows import Window, transform as window_transform  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "data"
LANDSAT_BANDS = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]  # ETM+ B1, B2, B3, B4, B5, B7
SENTINEL2_BANDS = ["B02", "B03", "B04", "B08"]
CLASSES = ["water", "vegetation", "built_up"]
VAL_START = 256  # rows [256, 352) of the Landsat scene are validation, rows [0, 256) training


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    total = a + b
    return np.divide(a - b, total, out=np.zeros_like(total), where=total != 0)


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut that maximises the between-class variance of a histogram."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[np.argmax(between)])


def rule_labels(scene: np.ndarray) -> tuple[np.ndarray, dict]:
    """0 water, 1 vegetation, 2 built-up/bare, from NDWI and NDVI of the ETM+ digital numbers."""
    blue, green, red, nir = scene[0], scene[1], scene[2], scene[3]
    ndwi = normalized_difference(green, nir)  # McFeeters
    ndvi = normalized_difference(nir, red)
    t_water = otsu(ndwi)
    land = ndwi <= t_water
    t_veg = otsu(ndvi[land])
    labels = np.full(ndwi.shape, 2, dtype=np.uint8)
    labels[ndvi > t_veg] = 1
    labels[~land] = 0
    return labels, {"ndwi_water_threshold": round(t_water, 4), "ndvi_vegetation_threshold": round(t_veg, 4)}


def write(path: Path, data: np.ndarray, profile: dict, window: Window | None, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = {**profile, "count": data.shape[0], "height": data.shape[1], "width": data.shape[2], "dtype": data.dtype.name}
    prof.update(driver="GTiff", compress="deflate", predictor=2, tiled=False)
    prof.pop("blockxsize", None), prof.pop("blockysize", None)
    if window is not None and profile.get("crs") is not None:
        prof["transform"] = window_transform(window, profile["transform"])
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)


def chip_origins(rows: range, width: int, size: int, stride: int):
    """Chip corners row by row; the last column is aligned to the right edge so the coast is kept."""
    cols = list(range(0, width - size + 1, stride))
    if cols[-1] != width - size:
        cols.append(width - size)
    for r in rows:
        for c in cols:
            yield r, c


def band_stats(chips: list[np.ndarray]) -> dict:
    stack = np.stack(chips).astype(np.float64)  # [N, C, H, W]
    return {
        "means": [round(float(v), 4) for v in stack.mean(axis=(0, 2, 3))],
        "stds": [round(float(v), 4) for v in stack.std(axis=(0, 2, 3))],
    }


def main(source: Path) -> None:
    if OUT.exists():
        for child in OUT.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    OUT.mkdir(parents=True, exist_ok=True)
    stats, counts = {}, {}

    with rasterio.open(source / "landsat7_etm_olinda_6band.tif") as src:
        scene, profile = src.read(), src.profile
    labels, thresholds = rule_labels(scene)
    height, width = labels.shape

    # 1. segmentation chips (also the pretraining set): 64 px, stride 32, split by rows
    seg_train = []
    for split, rows in (("train", range(0, VAL_START - 64 + 1, 32)), ("val", range(VAL_START, height - 64 + 1, 32))):
        n, hist = 0, np.zeros(3, int)
        for r, c in chip_origins(rows, width, 64, 32):
            window = Window(c, r, 64, 64)
            image, label = scene[:, r : r + 64, c : c + 64], labels[None, r : r + 64, c : c + 64]
            name = f"olinda_r{r:03d}_c{c:03d}"
            write(OUT / "olinda_l7" / split / "images" / f"{name}.tif", image, profile, window, LANDSAT_BANDS)
            write(OUT / "olinda_l7" / split / "labels" / f"{name}_label.tif", label, profile, window, ["class"])
            hist += np.bincount(label.ravel(), minlength=3)
            n += 1
            if split == "train":
                seg_train.append(image)
        counts[f"olinda_l7/{split}"] = {"chips": n, "pixels_per_class": dict(zip(CLASSES, hist.tolist(), strict=True))}
    stats["olinda_l7"] = band_stats(seg_train)

    # 2. scene classification chips: 32 px on a 32 px grid, majority class covering >= 60 %.
    #    The split is by 64 px blocks (every fifth block, spread over the scene, is validation), so
    #    every class has validation chips and no pixel is in both splits.
    cls_train, per_split = [], {"train": dict.fromkeys(CLASSES, 0), "val": dict.fromkeys(CLASSES, 0)}
    for r, c in chip_origins(range(0, height - 32 + 1, 32), width, 32, 32):
        share = np.bincount(labels[r : r + 32, c : c + 32].ravel(), minlength=3) / 32**2
        if share.max() < 0.6:
            continue
        split = "val" if (r // 64 + 2 * (c // 64)) % 5 == 0 else "train"
        cls = CLASSES[int(share.argmax())]
        image = scene[:, r : r + 32, c : c + 32]
        path = OUT / "olinda_l7_cls" / split / cls / f"olinda_r{r:03d}_c{c:03d}.tif"
        write(path, image, profile, Window(c, r, 32, 32), LANDSAT_BANDS)
        per_split[split][cls] += 1
        if split == "train":
            cls_train.append(image)
    counts.update({f"olinda_l7_cls/{k}": v for k, v in per_split.items()})
    stats["olinda_l7_cls"] = band_stats(cls_train)

    # 3. Sentinel-2 chips (4 bands, no SWIR): 64 px, non-overlapping
    with rasterio.open(source / "sentinel2_10m_4band_300.tif") as src:
        s2, s2_profile = src.read(), src.profile
    s2_profile.pop("transform", None), s2_profile.pop("crs", None)
    s2_chips = []
    for r, c in chip_origins(range(0, s2.shape[1] - 64 + 1, 64), s2.shape[2], 64, 64):
        chip = s2[:, r : r + 64, c : c + 64]
        write(OUT / "sentinel2" / f"s2_r{r:03d}_c{c:03d}.tif", chip, s2_profile, None, SENTINEL2_BANDS)
        s2_chips.append(chip)
    counts["sentinel2"] = {"chips": len(s2_chips)}
    stats["sentinel2"] = band_stats(s2_chips)

    # the whole-scene rule labels, as a picture next to the image
    rgb = np.stack([scene[i].astype(float) for i in (2, 1, 0)], axis=-1)
    lo, hi = np.percentile(rgb, [2, 98], axis=(0, 1))
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(np.clip((rgb - lo) / (hi - lo), 0, 1))
    axes[0].axhline(VAL_START - 0.5, color="yellow", lw=1)
    axes[0].set_title("Landsat 7 ETM+ Olinda (RGB); below the line: validation")
    axes[1].imshow(labels, cmap=matplotlib.colors.ListedColormap(["#1f5fbf", "#2e9d3a", "#c9a66b"]), interpolation="nearest")
    axes[1].set_title("rule labels: water / vegetation / built-up")
    for ax in axes:
        ax.set_axis_off()
    fig.savefig(OUT / "olinda_l7" / "rule_labels.png", dpi=80, bbox_inches="tight")
    plt.close(fig)

    summary = {"thresholds": thresholds, "counts": counts, "stats": stats}
    (OUT / "stats.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
