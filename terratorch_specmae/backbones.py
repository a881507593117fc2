"""TerraTorch registrations: ``s2mae_vit_*`` backbones and ``s2mae_vit_*_mae`` full models.

Both live in an ``s2mae`` source of TerraTorch's multi-source registries (like its ``timm_``
and ``smp_`` sources), so ``BACKBONE_REGISTRY.build("s2mae_vit_base")`` and
``FULL_MODEL_REGISTRY.build("s2mae_vit_base_mae")`` work, and a misspelt variant gets a
``ValueError`` listing the real ones instead of a generic "not found".
"""

from __future__ import annotations

from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY, Registry

from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.mae import SpectralMAE

VIT_SIZES = {
    "tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "large": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}
MAE_ARGS = (
    "masking",
    "mask_ratio",
    "masking_options",
    "decoder_embed_dim",
    "decoder_depth",
    "decoder_num_heads",
    "target_norm",
)


class VariantRegistry(Registry):
    """A TerraTorch registry source whose unknown names raise a ``ValueError`` naming the known ones."""

    def __init__(self, family: str) -> None:
        super().__init__()
        self.family = family

    def build(self, name: str, *args, **kwargs):
        if name not in self:
            known = ", ".join(f"{self.family}_{n}" for n in self)
            raise ValueError(f"Unknown model {self.family + '_' + name!r}; expected one of: {known}.")
        return super().build(name, *args, **kwargs)


S2MAE_BACKBONES = VariantRegistry("s2mae")
S2MAE_FULL_MODELS = VariantRegistry("s2mae")


def _register_source(registry, registry_source: VariantRegistry) -> None:
    if registry_source.family not in registry._sources:  # importing twice must not fail
        registry.register_source(registry_source.family, registry_source)


_register_source(BACKBONE_REGISTRY, S2MAE_BACKBONES)
_register_source(FULL_MODEL_REGISTRY, S2MAE_FULL_MODELS)


def build_backbone(size: str, pretrained: bool = False, padding: str | None = None, **kwargs) -> SpectralViT:
    """A :class:`SpectralViT` of a named size. ``padding`` is TerraTorch's (it pads before the backbone)."""
    if pretrained:
        raise ValueError(
            f"No published pretrained weights for the {size} S2MAE encoder yet: set pretrained=False and "
            "pass ckpt_path (backbone_ckpt_path) with a checkpoint of your own pretraining."
        )
    return SpectralViT(**VIT_SIZES[size], **kwargs)


def build_mae(size: str, **kwargs) -> SpectralMAE:
    """A :class:`SpectralMAE` whose encoder has a named size; MAE options are split from encoder options."""
    mae_kwargs = {k: kwargs.pop(k) for k in MAE_ARGS if k in kwargs}
    return SpectralMAE(build_backbone(size, **kwargs), **mae_kwargs)


def _add_size(size: str) -> None:
    def backbone(**kwargs) -> SpectralViT:
        return build_backbone(size, **kwargs)

    def full_model(**kwargs) -> SpectralMAE:
        return build_mae(size, **kwargs)

    backbone.__name__ = f"vit_{size}"
    backbone.__doc__ = f"S2MAE ViT-{size} encoder ({VIT_SIZES[size]}), 3D cube tokens; see SpectralViT."
    full_model.__name__ = f"vit_{size}_mae"
    full_model.__doc__ = f"S2MAE ViT-{size} masked autoencoder; see SpectralMAE and SpectralViT."
    S2MAE_BACKBONES.register(backbone)
    S2MAE_FULL_MODELS.register(full_model)


for _size in VIT_SIZES:
    _add_size(_size)
