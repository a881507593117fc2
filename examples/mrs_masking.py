"""Draw what MRS masks in one pixel-centred patch, next to random spectral masking.

    python examples/mrs_masking.py                       # the synthetic HSI + DSM scene of the MRS config
    python examples/mrs_masking.py --landsat             # a real Landsat 7 chip, band-level MRS on 6 bands

The model and its spectral masking come from ``configs/specmae_pretrain_mrs.yaml`` (for
``--landsat``: band-level ``redundant_spectra`` at the same ratio). Writes ``mrs_masking.png``:
the band-by-band cosine similarity of the patch (what MRS ranks by), the patch's mean spectrum,
and the bands each strategy masks. Prints how similar the most similar *visible* band is to the
masked bands under each strategy: the leak MRS is about.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
import torch
import yaml

from terratorch_specmae.datamodules.pixel_patches import edge_pad, patches_from_padded
from terratorch_specmae.masking import build_masking
from terratorch_specmae.masking.redundant_spectra import cosine_similarity_to
from terratorch_specmae.models import CubeTokenizer
from terratorch_specmae.plotting import save_figure, spectral_masking_figure

ROOT = Path(__file__).resolve().parents[1]
LANDSAT_MEANS = [76.2173, 64.8727, 63.2397, 67.2249, 91.2848, 63.8113]
LANDSAT_STDS = [13.6366, 15.2552, 22.5513, 17.8851, 32.136, 30.9928]


def hsi_patch(config: Path, pixel: list[int] | None) -> tuple[torch.Tensor, list[str], object]:
    """A standardised patch of the MRS config's scene (centred on ``pixel``, else on the pixel whose
    patch varies most in space) and the config's spectral masking."""
    from terratorch_specmae.datamodules import HSIPixelDataModule

    cfg = yaml.safe_load(config.read_text())
    data = cfg["data"]["init_args"]
    dm = HSIPixelDataModule(  # the config's paths are relative to the repository root
        hsi_path=str(ROOT / data["hsi_path"]), aux_paths=[str(ROOT / p) for p in data.get("aux_paths", [])],
        patch_size=data.get("patch_size", 7),
    )
    padded = edge_pad(dm.load_stack(), dm.patch_size)
    if pixel is None:
        windows = torch.from_numpy(padded)[None].unfold(2, dm.patch_size, 1).unfold(3, dm.patch_size, 1)
        spread = windows.flatten(-2).std(dim=-1).mean(dim=1)[0]  # [H, W]: mean over bands of the patch's std
        pixel = list(np.unravel_index(int(spread.argmax()), spread.shape))
        print(f"patch centred on pixel {pixel[0]}, {pixel[1]} (the most heterogeneous of the scene)")
    row, col = pixel
    patch = torch.from_numpy(patches_from_padded(padded, [row], [col], dm.patch_size)[0])
    args = cfg["model"]["init_args"]["model_args"]
    masking = build_masking(args["spectral_masking"], bands=args["bands"], mask_ratio=args["spectral_mask_ratio"],
                            **(args.get("spectral_masking_options") or {}))
    return patch, list(args["bands"]), masking


def landsat_patch(ratio: float) -> tuple[torch.Tensor, list[str], object]:
    path = sorted((ROOT / "examples/data/olinda_l7/val/images").glob("*.tif"))[5]
    with rasterio.open(path) as src:
        raw = torch.from_numpy(src.read().astype(np.float32))
    patch = (raw - torch.tensor(LANDSAT_MEANS)[:, None, None]) / torch.tensor(LANDSAT_STDS)[:, None, None]
    bands = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
    return patch, bands, build_masking("redundant_spectra", bands=bands, mask_ratio=ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs/specmae_pretrain_mrs.yaml")
    parser.add_argument("--landsat", action="store_true", help="a real Landsat 7 chip instead of the HSI scene")
    parser.add_argument("--pixel", type=int, nargs=2, default=None,
                        help="row col of the HSI patch centre (default: the most heterogeneous patch of the scene)")
    parser.add_argument("--similarity", choices=["cosine", "correlation"], default=None,
                        help="override the config's MRS similarity")
    parser.add_argument("--ratio", type=float, default=0.5, help="mask ratio for --landsat (default 0.5)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("mrs_masking.png"))
    args = parser.parse_args()

    patch, bands, mrs = landsat_patch(args.ratio) if args.landsat else hsi_patch(args.config, args.pixel)
    if args.similarity:
        mrs.similarity = args.similarity
    c = patch.shape[0]
    x = patch[None]
    grid = CubeTokenizer(c, 1, patch_size=patch.shape[-1], spectral_patch_size=1).grid(*patch.shape[-2:])
    mrs.check_grid(grid)
    generator = torch.Generator().manual_seed(args.seed)
    anchor, _, _ = mrs.rank_groups(x, grid, torch.Generator().manual_seed(args.seed))
    mrs_mask = mrs(grid, 1, x.device, image=x, generator=generator).mask[0].bool()
    random_mask = build_masking("random", mask_ratio=mrs.mask_ratio)(
        grid, 1, x.device, generator=torch.Generator().manual_seed(args.seed)
    ).mask[0].bool()
    vectors = x.reshape(1, c, -1)
    similarity = torch.stack([cosine_similarity_to(vectors, torch.tensor([i]))[0] for i in range(c)])
    for name, mask in (("MRS", mrs_mask), ("random", random_mask)):
        leak = similarity[mask][:, ~mask].amax(dim=1)  # best visible stand-in for each masked band
        print(f"{name:>6}: {int(mask.sum())}/{c} bands masked; most similar visible band per masked band: "
              f"mean cosine {leak.mean():.3f}, min {leak.min():.3f}")
    fig = spectral_masking_figure(
        similarity.numpy(), patch.mean(dim=(1, 2)).numpy(), bands, int(anchor[0]),
        {"MRS": mrs_mask.numpy(), "random": random_mask.numpy()},
    )
    print("wrote", save_figure(fig, args.out))


if __name__ == "__main__":
    main()
