"""Does the pretraining input pipeline keep up with the model? Loading alone vs training, in one run.

Two input pipelines (``--corpus``):

* ``chips`` (default): ``--chips`` GeoTIFF chips (12 bands × 128 × 128 px, uint16, deflate —
  Sentinel-2 L2A-like values) read by TerraTorch's ``GenericMultiModalDataModule`` (rioxarray
  reads, the per-batch standardisation, ``D4`` flips), as the small pretraining configs read them.
* ``ssl4eo``: a fake SSL4EO-S12 L1C corpus in its real layout (``--locations`` locations × 4
  seasons × 13 single-band 264 × 264 px GeoTIFFs, deflate) read by ``SSL4EOS12PretrainDataModule``
  as the paper-scale recipe does: 12 bands by name, one random season per location, MAE's random
  resized crop to 128 px in the workers, standardisation and flips after the transfer (on the
  device).

What is timed:

* **Loading alone**: ``--batches`` batches of ``--batch-size`` with ``num_workers`` = each of
  ``--workers``, each moved to ``--device`` and through the datamodule's after-transfer
  augmentation; samples/s.
* With ``--shards`` (``ssl4eo``): the same corpus written as LitData shards (``write_corpus_shards``:
  every season a sample, uint16, uncropped), and loading from them through
  ``StreamingCorpusDataModule`` (the same crops, standardisation and flips) with each ``--workers``;
  the ratio to loading the GeoTIFFs.
* **Training alone**: the S2MAE pretraining step (``--size``, bf16 autocast, fused AdamW) on
  ``--device``, on one batch kept there; samples/s.
* **Training fed by the loader**: the same steps taking their batches from the loader with
  ``num_workers`` = ``--train-workers``; samples/s, and its ratio to training alone (1.0 = the
  pipeline costs the step nothing).

    python benchmarks/data_throughput.py                             # ViT-tiny, 256 chips (~3 min on 2 CPU cores)
    python benchmarks/data_throughput.py --size base --workers 0 1 2 --train-workers 1
    # the GPU record (benchmarks/gpu_record.sh): SSL4EO-S12 layout, ViT-B, batch 256, 16 workers
    python benchmarks/data_throughput.py --corpus ssl4eo --device cuda --locations 2048 --batch-size 256 \
        --batches 12 --workers 16 --size base --train-steps 10 --train-workers 16
"""

from __future__ import annotations

import argparse
import json
import os
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


SSL4EO_SEASONS = ("20200321T101021_20200321T101312_T32TPT", "20200624T101031_20200624T101603_T32TPT",
                  "20200907T101031_20200907T101353_T32TPT", "20201212T102421_20201212T102418_T32TPT")  # fmt: skip
SSL4EO_FILES = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]


def write_ssl4eo(root: Path, locations: int, unique: int = 16, size: int = 264, seed: int = 0) -> None:
    """A fake SSL4EO-S12 L1C corpus in its layout: ``root/s2c/<7-digit location>/<season>/B1.tif … B12.tif``.

    ``unique`` locations are written; the others are hard links to them (the same bytes to decode per
    sample, written in seconds). Every file is in the page cache either way: what is measured is
    decoding, cropping and collating, not the disk."""
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint16", "compress": "deflate",
               "crs": "EPSG:32632", "transform": from_origin(600_000, 5_000_000, 10, 10)}  # fmt: skip
    for location in range(locations):
        for season in SSL4EO_SEASONS:
            folder = root / "s2c" / f"{location:07d}" / season
            folder.mkdir(parents=True)
            for band in SSL4EO_FILES:
                if location >= unique:
                    os.link(root / "s2c" / f"{location % unique:07d}" / season / f"{band}.tif", folder / f"{band}.tif")
                    continue
                data = rng.normal(rng.integers(300, 3000), 300, size=(size, size)).clip(0, 10000).astype("uint16")
                with rasterio.open(folder / f"{band}.tif", "w", **profile) as dst:
                    dst.write(data, 1)


def ssl4eo_datamodule(root: Path, batch_size: int, workers: int, seasons: str = "random"):
    from terratorch_specmae.datamodules import SSL4EOS12PretrainDataModule

    dm = SSL4EOS12PretrainDataModule(root=str(root), split="s2c", bands=BANDS, seasons=seasons, img_size=128,
                                     val_samples=1, batch_size=batch_size, num_workers=workers)  # fmt: skip
    dm.setup("fit")
    return dm


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


def batches(dm, n: int, device: torch.device):
    """``n`` normalised batches on ``device`` (the datamodule standardises after the transfer, as under Lightning)."""
    from types import SimpleNamespace

    dm.trainer = SimpleNamespace(training=True, validating=False, sanity_checking=False, testing=False, predicting=False)
    done, loader = 0, dm.train_dataloader()  # one loader: its persistent workers serve every epoch
    while done < n:
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            batch = dm.on_after_batch_transfer(batch, 0)
            yield batch["image"]
            done += 1
            if done == n:
                return


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=["chips", "ssl4eo"], default="chips", help="input pipeline (default: chips)")
    parser.add_argument("--chips", type=int, default=256, help="chips written (--corpus chips; default: 256)")
    parser.add_argument("--locations", type=int, default=64, help="SSL4EO-S12 locations written (--corpus ssl4eo; default: 64)")
    parser.add_argument("--device", default="cpu", help="where batches go and the model trains (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=24, help="batches per timed loading run (default: 24)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", default="tiny", help="S2MAE size for the training rate (default: tiny)")
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--shards", action="store_true",
                        help="--corpus ssl4eo: also write the corpus as LitData shards and time loading them")
    parser.add_argument("--train-workers", type=int, default=1, help="loader workers while training (default: 1)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.shards and args.corpus != "ssl4eo":
        parser.error("--shards needs --corpus ssl4eo")

    from terratorch_specmae.backbones import build_mae

    device = torch.device(args.device)
    start, results = time.perf_counter(), {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.corpus == "chips":
            write_chips(folder, args.chips)
            make = datamodule
            what = f"{args.chips} chips of 12 × 128 × 128 uint16"
        else:
            write_ssl4eo(folder, args.locations)
            make = ssl4eo_datamodule
            what = f"SSL4EO-S12 layout, {args.locations} locations × 4 seasons × 13 bands of 264² px uint16"
        mb = sum(p.stat().st_size for p in folder.rglob("*.tif")) / 1e6  # hard links counted each time
        print(f"{what} ({mb:.0f} MB on disk), batch {args.batch_size}, device {device}", flush=True)
        def loading_rate(dm) -> float:
            loader = batches(dm, args.batches + 1, device)
            next(loader)  # worker start-up outside the timing
            t0 = time.perf_counter()
            for _ in loader:
                pass
            sync(device)
            return args.batches * args.batch_size / (time.perf_counter() - t0)

        for workers in args.workers:
            results[f"loading_workers_{workers}"] = rate = loading_rate(make(folder, args.batch_size, workers))
            print(f"loading alone, num_workers={workers}: {rate:8.1f} samples/s", flush=True)
        if args.shards:  # the same corpus as LitData shards (StreamingCorpusDataModule)
            from terratorch_specmae.datamodules import StreamingCorpusDataModule
            from terratorch_specmae.datamodules.streaming import write_corpus_shards

            t0 = time.perf_counter()
            every_season = ssl4eo_datamodule(folder, args.batch_size, 0, seasons="all")
            write_corpus_shards(every_season, folder / "shards", num_workers=max(1, *args.workers))
            written = time.perf_counter() - t0
            shard_mb = sum(p.stat().st_size for p in (folder / "shards").rglob("*.bin")) / 1e6
            print(f"shards written in {written:.1f} s ({shard_mb:.0f} MB; every season a sample)", flush=True)
            results["shards_write_s"] = written
            for workers in args.workers:
                dm = StreamingCorpusDataModule(str(folder / "shards"), bands=BANDS, img_size=128,
                                               batch_size=args.batch_size, num_workers=workers)  # fmt: skip
                dm.setup("fit")
                rate = loading_rate(dm)
                results[f"shards_loading_workers_{workers}"] = rate
                ratio = rate / results[f"loading_workers_{workers}"]
                print(f"loading shards, num_workers={workers}: {rate:8.1f} samples/s = {ratio:.2f}x the GeoTIFFs", flush=True)

        model = build_mae(args.size, img_size=128, mask_ratio=0.9, decoder_embed_dim=512, decoder_depth=4,
                          decoder_num_heads=16).to(device)  # fmt: skip
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(x: torch.Tensor) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = model(x).loss["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        dm = make(folder, args.batch_size, args.train_workers)
        x = next(iter(batches(dm, 1, device)))
        step(x)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        for _ in range(args.train_steps):
            step(x)
        sync(device)
        alone = args.train_steps * args.batch_size / (time.perf_counter() - t0)
        loader = batches(dm, args.train_steps + 1, device)
        step(next(loader))  # worker start-up outside the timing
        sync(device)
        t0 = time.perf_counter()
        for x in loader:
            step(x)
        sync(device)
        fed = args.train_steps * args.batch_size / (time.perf_counter() - t0)
    results.update({"training_alone": alone, "training_fed": fed, "fed_over_alone": fed / alone})
    print(f"training alone (S2MAE ViT-{args.size}, bf16, {device}): {alone:8.1f} samples/s")
    print(f"training fed by the loader (num_workers={args.train_workers}): {fed:8.1f} samples/s "
          f"= {fed / alone:.2f} of training alone")
    best = max(v for k, v in results.items() if k.startswith("loading"))
    print(f"loading alone / training alone: {best / alone:.1f}x (best loader setting)")
    print(f"total time {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "samples_per_s": results}, indent=2))


if __name__ == "__main__":
    main()
