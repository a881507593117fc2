"""Draw SIGMAE's saliency masking on the real Landsat 7 scene at the start, middle and end of the curriculum.

    python examples/saliency_masking.py
    python examples/saliency_masking.py --spectral-patch-size 3 --order easy_first

The training chips of ``examples/data/olinda_l7`` are mosaicked back into the scene they were
cut from (256 × 349 px of Olinda, Brazil: sea, city, vegetation). The model and its masking
come from the SIGMAE pretraining config, so the picture shows what that config trains with:
the index maps (NDVI, NDWI, NDBI), the per-patch saliency map and the mask chosen at 0 %,
50 % and 100 % of training (γ = 0, 0.5, 1 under the default linear curriculum). Writes
``saliency_masking.png`` and prints how much more salient the hidden patches are than the
visible ones at each point.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
import rasterio.merge
import torch
import yaml
from terratorch.registry import FULL_MODEL_REGISTRY

from terratorch_specmae.plotting import saliency_masking_figure, save_figure

ROOT = Path(__file__).resolve().parents[1]


def read_scene(chips: Path) -> torch.Tensor:
    """Mosaic the georeferenced chips of a folder back into one ``[C, H, W]`` image."""
    files = sorted(chips.glob("*.tif"))
    if not files:
        raise SystemExit(f"No .tif chips found in {chips}")
    sources = [rasterio.open(f) for f in files]
    try:
        mosaic, _ = rasterio.merge.merge(sources)
    finally:
        for src in sources:
            src.close()
    return torch.from_numpy(mosaic.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs/specmae_pretrain_sigmae.yaml")
    parser.add_argument("--chips", type=Path, default=ROOT / "examples/data/olinda_l7/train/images")
    parser.add_argument("--progress", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--spectral-patch-size", type=int, default=None, help="3 for S2MAE-style cube tokens")
    parser.add_argument("--order", choices=["hard_first", "easy_first"], default=None)
    parser.add_argument("--out", type=Path, default=Path("saliency_masking.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = yaml.safe_load(args.config.read_text())
    model_args = dict(config["model"]["init_args"]["model_args"])
    model_args["masking_options"] = dict(model_args.get("masking_options") or {})
    if args.order:
        model_args["masking_options"]["order"] = args.order
    if args.spectral_patch_size:
        model_args["spectral_patch_size"] = args.spectral_patch_size
    model = FULL_MODEL_REGISTRY.build(model_args.pop("model"), **model_args)
    masking = model.masking

    data = config["data"]["init_args"]
    modality = data["modalities"][0]
    if masking.means is None:  # as SpectralMAETask does in a fit: the datamodule's normalisation
        masking.set_normalization(data["means"][modality], data["stds"][modality], source="the config's data")
    means = torch.tensor(data["means"][modality])[:, None, None]
    stds = torch.tensor(data["stds"][modality])[:, None, None]
    raw = read_scene(args.chips)
    image = ((raw - means) / stds)[None]  # as the datamodule hands it to the model
    grid = model.encoder.tokenizer.grid(*image.shape[-2:])
    print(f"scene {tuple(raw.shape)}, {grid.cells} patches of {grid.patch_size} px × {grid.groups} spectral group(s)")

    saliency = masking.saliency(image, grid.patch_size).repeat(1, grid.groups)[0]
    for progress in args.progress:
        generator = torch.Generator().manual_seed(args.seed)
        hidden = masking(grid, 1, image.device, generator=generator, image=image, progress=progress).mask[0] > 0
        print(
            f"progress {progress:4.0%}: γ={masking.curriculum(progress):.2f}, mean saliency of hidden tokens "
            f"{saliency[hidden].mean():.3f}, of visible tokens {saliency[~hidden].mean():.3f}"
        )
    rgb = [model.encoder.bands.index(b) for b in ("RED", "GREEN", "BLUE")]
    fig = saliency_masking_figure(masking, image, grid, args.progress, rgb, args.seed)
    print("wrote", save_figure(fig, args.out))


if __name__ == "__main__":
    main()
