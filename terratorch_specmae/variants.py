"""The registered model variants as data: one table of ViT sizes, the two spectral families' token
and masking defaults, and SS-MAE's size.

Read by the registries (:mod:`terratorch_specmae.backbones`, one literal builder function per
registered name), by the model card (which names the variant a model is) and by the SpectralGPT
converter (heads of a width). It imports nothing of the package: any layer may use it.
"""

from __future__ import annotations

VIT_SIZES: dict[str, dict[str, int]] = {  # ViT's widths, depths and heads (timm's vit_*_patch16)
    "tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "large": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}
FAMILIES: dict[str, dict] = {
    "s2mae": {
        "title": "S2MAE",
        "tokens": "3D cube tokens",
        "encoder": {"patch_size": 8, "spectral_patch_size": 3},
        "mae": {"masking": "cube_random"},
    },
    "sigmae": {
        "title": "SIGMAE",
        "tokens": "2D patch tokens over all bands",
        "encoder": {"patch_size": 16, "spectral_patch_size": None},
        "mae": {"masking": "saliency"},
    },
}
SSMAE_SIZES: dict[str, dict[str, int]] = {"base": {"embed_dim": 256, "depth": 2, "num_heads": 8}}  # per branch


def variant_name(family: str, size: str, mae: bool = False) -> str:
    """The registered name of a family's size: ``s2mae_vit_base``, ``sigmae_vit_tiny_mae``, ``ssmae_base``."""
    name = f"{family}_{size}" if family == "ssmae" else f"{family}_vit_{size}"
    return f"{name}_mae" if mae else name


def size_of(embed_dim: int, depth: int) -> str | None:
    """The name of the ViT size with this width and depth, or None."""
    return next((name for name, s in VIT_SIZES.items() if (s["embed_dim"], s["depth"]) == (embed_dim, depth)), None)


def heads_for_width(embed_dim: int) -> int | None:
    """ViT's number of heads for a width of :data:`VIT_SIZES` (768 → 12), or None for another width."""
    return next((s["num_heads"] for s in VIT_SIZES.values() if s["embed_dim"] == embed_dim), None)
