"""Does the pretraining input pipeline keep up with the model? Loading alone vs training, in one run.

* ``--chips`` GeoTIFF chips (12 bands × 128 × 128 px, uint16, deflate — Sentinel-2 L2A-like
  values) are written to a temporary folder, as the pretraining configs read them.
* **Loading alone**: TerraTorch's ``GenericMultiModalDataModule`` (rioxarray reads, the
  per-batch standardisation, ``D4`` flips) iterated for ``--batches`` batches of ``--batch-size``
  with ``num_workers`` = each of ``--workers``; samples/s.
* **Training alone**: the S2MAE pretraining step (``--size``, bf16 autocast, fused AdamW) on one
  batch kept in memory; samples/s.
* **Training fed by the loader**: the same steps taking their batches from the loader with
  ``num_workers`` = ``--train-workers``; samples/s, and its ratio to training alone (1.0 = the
  pipeline costs the step nothing).

    python benchmarks/data_throughput.py                             # ViT-tiny, 256 chips (~3 min on 2 CPU cores)
    python benchmarks/data_throughput.py --size base --workers 0 1 2 --train-workers 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def write_chips(folder: Path, n: int, size: int = 128, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "height": size, "width": size, "count": len(BANDS), "dtype": "uint16",
               "compress": "deflate", "crs": "EPSG:32633", "transform": from_origin(500_000, 5_000_000, 10, 10)}  # fmt: skip
    base = rng.integers(200, 4000, size=(len(BANDS), 1, 1))
    for i in range(n):
        data = (base + rng.normal(0, 300, size=(len(BANDS), size, size))).clip(0, 10000).astype("uint16")
        with rasterio.open(folder / f"chip_{i:05d}.tif", "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = tuple(BANDS)


def datamodule(folder: Path, batch_size: int, workers: int):
    import albumentations
    from albumentations.pytorch import ToTensorV2
    from terratorch.datamodules import GenericMultiModalDataModule

    dm = GenericMultiModalDataModule(
        task=None, modalities=["s2"], concat_bands=True, batch_size=batch_size, num_workers=workers,
        train_data_root={"s2": str(folder)}, val_data_root={"s2": str(folder)}, image_grep={"s2": "*.tif"},
        means={"s2": [1500.0] * len(BANDS)}, stds={"s2": [500.0] * len(BANDS)},
        train_transform=[albumentations.D4(), ToTensorV2()], drop_last=True,
    )  # fmt: skip
    dm.setup("fit")
    return dm


def batches(dm, n: int):
    """``n`` normalised batches (the datamodule standardises on transfer, as under Lightning)."""
    done = 0
    while done < n:
        for batch in dm.train_dataloader():
            batch = dm.on_after_batch_transfer(batch, 0)
            yield batch["image"]
            done += 1
            if done == n:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=24, help="batches per timed loading run (default: 24)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", default="tiny", help="S2MAE size for the training rate (default: tiny)")
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--train-workers", type=int, default=1, help="loader workers while training (default: 1)")
    parser.add_argument("--json")
    args = parser.parse_args()

    from terratorch_specmae.backbones import build_mae

    start, results = time.perf_counter(), {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_chips(folder, args.chips)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{args.chips} chips of 12 × 128 × 128 uint16 ({mb:.0f} MB on disk), batch {args.batch_size}", flush=True)
        for workers in args.workers:
            dm = datamodule(folder, args.batch_size, workers)
            next(iter(batches(dm, 1)))  # worker start-up outside the timing
            t0 = time.perf_counter()
            for _ in batches(dm, args.batches):
                pass
            rate = args.batches * args.batch_size / (time.perf_counter() - t0)
            results[f"loading_workers_{workers}"] = rate
            print(f"loading alone, num_workers={workers}: {rate:8.1f} samples/s", flush=True)

        model = build_mae(args.size, img_size=128, mask_ratio=0.9, decoder_embed_dim=512, decoder_depth=4, decoder_num_heads=16)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(x: torch.Tensor) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(x).loss["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        dm = datamodule(folder, args.batch_size, args.train_workers)
        x = next(iter(batches(dm, 1)))
        step(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.train_steps):
            step(x)
        alone = args.train_steps * args.batch_size / (time.perf_counter() - t0)
        loader = batches(dm, args.train_steps + 1)
        step(next(loader))  # worker start-up outside the timing
        t0 = time.perf_counter()
        for x in loader:
            step(x)
        fed = args.train_steps * args.batch_size / (time.perf_counter() - t0)
    results.update({"training_alone": alone, "training_fed": fed, "fed_over_alone": fed / alone})
    print(f"training alone (S2MAE ViT-{args.size}, bf16): {alone:8.1f} samples/s")
    print(f"training fed by the loader (num_workers={args.train_workers}): {fed:8.1f} samples/s "
          f"= {fed / alone:.2f} of training alone")
    best = max(v for k, v in results.items() if k.startswith("loading"))
    print(f"loading alone / training alone: {best / alone:.1f}x (best loader setting)")
    print(f"total time {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "samples_per_s": results}, indent=2))


if __name__ == "__main__":
    main()
