"""Download every catalogue entry for real, check it, load it, and describe its features on the shipped scene.

    python benchmarks/pretrained_catalogue.py                       # every encoder entry (~4.5 GB to download)
    python benchmarks/pretrained_catalogue.py --only spectralgpt    # entries whose name contains a string
    python benchmarks/pretrained_catalogue.py --json catalogue.json

For each entry of :data:`terratorch_specmae.weights.PRETRAINED_CFGS` (encoders; ``--mae`` adds the
``_mae`` variants), through the same code a ``backbone_pretrained: true`` takes:

1. **download and check**: the file's size, MD5 and SHA-256, the time taken, and whether the
   publisher's checksum (Zenodo's MD5, the Hub's SHA-256) matched — a mismatch is an error;
2. **load**: the model built with the entry's own bands and size (strict: the load report's
   layout, container, dropped / unexpected / fresh keys), and again with the bands of the
   shipped Sentinel-2 chips (``examples/data/sentinel2``: B02 B03 B04 B08, reflectance × 10⁴,
   64 px), fitted by name;
3. **features on the shipped chips**, scaled as the entry says (SpectralGPT: min–max per image;
   SSL4EO-S12: ÷ 10 000): the last block's token statistics (mean, std, mean cosine similarity
   between different chips' pooled features — near 1 means the features barely tell chips
   apart) next to the same architecture at random initialisation, the simplest baseline;
4. for the SSL4EO-S12 entries, **the class token's effect**: timm's ViT loaded strictly with the
   whole file (class token kept) against our converted encoder on the same 13-band input (the
   chips' four bands, each missing band filled with the nearest-wavelength band present): cosine
   similarity of the patch tokens.

Without a network every entry is reported as not reached (and nothing else is measured); the
script exits 0 so the record can still be written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY  # noqa: E402

import terratorch_specmae  # noqa: E402,F401 (registers the models)
from terratorch_specmae.bands import band_info  # noqa: E402
from terratorch_specmae.datamodules.benchmarks import minmax_per_image  # noqa: E402
from terratorch_specmae.weights import PRETRAINED_CFGS, fetch_pretrained  # noqa: E402
from terratorch_specmae.weights.downloads import hub_file, zenodo_file  # noqa: E402

CHIPS = ROOT / "examples" / "data" / "sentinel2"


def chips() -> tuple[torch.Tensor, list[str]]:
    paths = sorted(CHIPS.glob("*.tif"))
    stack = []
    for path in paths:
        with rasterio.open(path) as f:
            stack.append(f.read().astype(np.float32))
            bands = list(f.descriptions)
    return torch.from_numpy(np.stack(stack)), bands


def scaled(x: torch.Tensor, cfg) -> torch.Tensor:
    if cfg.scaling == "minmax_per_image":
        return minmax_per_image(x)
    mean = torch.tensor(cfg.mean[: x.shape[1]] if cfg.mean else [0.0] * x.shape[1])[None, :, None, None]
    std = torch.tensor(cfg.std[: x.shape[1]] if cfg.std else [1.0] * x.shape[1])[None, :, None, None]
    return (x - mean) / std


def digests(path: Path) -> dict:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            md5.update(block)
            sha.update(block)
    return {"bytes": path.stat().st_size, "md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def feature_stats(model, x: torch.Tensor) -> dict:
    with torch.no_grad():
        tokens = model(x)[-1].float()  # [B, N, C]
    pooled = F.normalize(tokens.mean(1), dim=-1)
    similarity = pooled @ pooled.T
    off = similarity[~torch.eye(len(x), dtype=torch.bool)]
    return {"mean": tokens.mean().item(), "std": tokens.std().item(), "chip_cosine_mean": off.mean().item(),
            "finite": bool(torch.isfinite(tokens).all())}  # fmt: skip


def report_dict(report) -> dict:
    keys = ("source", "layout", "container", "adapted", "unexpected", "fresh", "new_bands", "dropped", "ignored")
    return {k: getattr(report, k) for k in keys}


def fill_to(x: torch.Tensor, have: list[str], want: list[str]) -> torch.Tensor:
    """A ``want``-band input from ``have``: each missing band is the nearest-wavelength band present."""
    wavelengths = [band_info(b).wavelength_nm for b in have]
    order = []
    for band in want:
        w = band_info(band).wavelength_nm
        order.append(have.index(band) if band in have else min(range(len(have)), key=lambda i: abs(wavelengths[i] - w)))
    return x[:, order]


def class_token_effect(cfg, variant: str, state: dict[str, torch.Tensor]) -> dict:
    import timm

    size = variant.split("_")[2]
    with torch.device("meta"):
        vit = timm.create_model(f"vit_{size}_patch16_224", in_chans=len(cfg.bands), num_classes=0, global_pool="")
    vit.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True, assign=True)
    ours = BACKBONE_REGISTRY.build(f"{variant}.{cfg.tag.split('.', 1)[1]}", pretrained=True).eval()
    x, bands = chips()
    x = F.interpolate(scaled(fill_to(x, bands, cfg.bands), cfg), size=224, mode="bilinear", antialias=True)
    with torch.no_grad():
        theirs = vit.eval().forward_features(x)[:, 1:]
        mine = ours(x)[-1]
    cosine = F.cosine_similarity(theirs, mine, dim=-1)
    return {"patch_token_cosine_mean": cosine.mean().item(), "patch_token_cosine_min": cosine.min().item(),
            "relative_difference": ((theirs - mine).norm() / theirs.norm()).item()}  # fmt: skip


def measure(variant: str, tag: str) -> dict:
    cfg = PRETRAINED_CFGS[variant][tag]
    registry = FULL_MODEL_REGISTRY if variant.endswith("_mae") else BACKBONE_REGISTRY
    row = {"entry": f"{variant}.{tag}", "where": cfg.location}
    start = time.perf_counter()
    weights = fetch_pretrained(cfg)  # download, checksum, conversion: the path backbone_pretrained takes
    row["fetch_seconds"] = round(time.perf_counter() - start, 1)
    original = zenodo_file(cfg.zenodo_record, cfg.filename, cfg.md5) if cfg.zenodo_record else Path(hub_file(cfg))
    row["file"] = {"path": str(original), **digests(original)}  # the published file (not our conversion of it)
    model = registry.build(f"{variant}.{tag}", pretrained=True).eval()
    row["load_report"] = report_dict(model.load_report)
    if variant.endswith("_mae"):
        return row
    x, bands = chips()
    fitted = BACKBONE_REGISTRY.build(f"{variant}.{tag}", pretrained=True, bands=bands, img_size=x.shape[-1]).eval()
    row["load_report_on_chip_bands"] = report_dict(fitted.load_report)
    fresh = BACKBONE_REGISTRY.build(f"{variant}.{tag}", pretrained=False, bands=bands, img_size=x.shape[-1]).eval()
    inputs = scaled(x, cfg)
    row["features"] = {"pretrained": feature_stats(fitted, inputs), "random_init": feature_stats(fresh, inputs)}
    if cfg.converter == "timm-vit":  # a Hub file: fetched as it is, converted when loaded
        row["class_token_effect"] = class_token_effect(cfg, variant, weights.state)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="entries whose name contains this")
    parser.add_argument("--mae", action="store_true", help="also the _mae variants (continued pretraining)")
    parser.add_argument("--json", type=Path, help="write the rows to this file (new file only)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an entry that fails")
    args = parser.parse_args()
    entries = sorted(
        (v, t) for v, tags in PRETRAINED_CFGS.items() for t in tags
        if args.only in f"{v}.{t}" and (args.mae or not v.endswith("_mae"))
    )  # fmt: skip
    rows = []
    print(f"torch {torch.__version__}; {len(entries)} entries; chips: {len(list(CHIPS.glob('*.tif')))} from {CHIPS}")
    for variant, tag in entries:
        try:
            row = measure(variant, tag)
        except Exception as err:  # noqa: BLE001 (a report: every entry gets a row, whatever went wrong)
            row = {"entry": f"{variant}.{tag}", "not_reached": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
            if args.debug:
                traceback.print_exc()
        rows.append(row)
        print(json.dumps(row, indent=1, default=str))
    reached = [r for r in rows if "not_reached" not in r]
    print(f"\n{len(reached)} of {len(rows)} entries downloaded, checked and loaded.")
    for r in reached:
        f = r.get("features")
        line = f"{r['entry']}: {r['file']['bytes'] / 1e6:.0f} MB, md5 {r['file']['md5']}, layout {r['load_report']['layout']}"
        if f:
            line += (f"; chip cosine {f['pretrained']['chip_cosine_mean']:.3f} (random init "
                     f"{f['random_init']['chip_cosine_mean']:.3f})")  # fmt: skip
        if "class_token_effect" in r:
            line += f"; with vs without class token: patch cosine {r['class_token_effect']['patch_token_cosine_mean']:.4f}"
        print(line)
    if args.json:
        with open(args.json, "x") as f:  # never replaces an earlier record
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    main()
