"""Reconstruct validation chips with a pretrained S2MAE and save the picture.

    terratorch fit -c configs/specmae_pretrain_s2mae.yaml
    python examples/reconstruct.py outputs/pretrain_s2mae/lightning_logs/version_0/checkpoints/last.ckpt

Writes ``reconstruction.png`` (input | mask | reconstruction for blue, NIR and SWIR-1 of four
validation chips) and prints the masked-pixel RMSE per band, in the model's input units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
import torch
import yaml

from terratorch_specmae.plotting import reconstruction_figure, save_figure
from terratorch_specmae.tasks import SpectralMAETask

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by the pretraining config")
    parser.add_argument("--config", type=Path, default=ROOT / "configs/specmae_pretrain_s2mae.yaml")
    parser.add_argument("--chips", type=Path, default=ROOT / "examples/data/olinda_l7/val/images")
    parser.add_argument("--num", type=int, default=4, help="number of chips to show")
    parser.add_argument("--out", type=Path, default=Path("reconstruction.png"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the random mask")
    args = parser.parse_args()

    data = yaml.safe_load(args.config.read_text())["data"]["init_args"]
    modality = data["modalities"][0]
    means = torch.tensor(data["means"][modality])[:, None, None]
    stds = torch.tensor(data["stds"][modality])[:, None, None]
    files = sorted(args.chips.glob("*.tif"))[: args.num]
    if not files:
        raise SystemExit(f"No .tif chips found in {args.chips}")
    raw = torch.stack([torch.from_numpy(rasterio.open(f).read().astype(np.float32)) for f in files])
    image = (raw - means) / stds  # the datamodule's normalisation

    task = SpectralMAETask.load_from_checkpoint(args.checkpoint, map_location="cpu")
    task.eval()
    with torch.no_grad():
        out = task.model(image, generator=torch.Generator().manual_seed(args.seed))
    bands = list(task.model.encoder.bands)
    masked = out.mask > 0
    err = torch.where(masked, (out.pred - image) ** 2, torch.nan)
    rmse = err.nanmean(dim=(0, 2, 3)).sqrt() * stds.flatten()  # back to digital numbers
    for name, value in zip(bands, rmse.tolist(), strict=True):
        print(f"{name:>10}: masked-pixel RMSE {value:.2f} DN")
    pick = [bands.index(b) for b in ("BLUE", "NIR_BROAD", "SWIR_1") if b in bands] or [0]
    fig = reconstruction_figure(raw, out.pred * stds + means, out.mask, pick, bands)
    print("wrote", save_figure(fig, args.out))


if __name__ == "__main__":
    main()
