"""TerraTorch registrations: the S2MAE and SIGMAE encoders (backbones) and masked autoencoders (full models).

* ``s2mae_vit_{tiny,small,base,large}`` — 3D cube tokens (``p = 8``, ``t = 3`` bands), and
  ``s2mae_vit_*_mae`` with random 3D masking;
* ``sigmae_vit_{tiny,small,base,large}`` — 2D patch tokens over all bands (``p = 16``), and
  ``sigmae_vit_*_mae`` with spectral-index saliency masking on a curriculum;
* ``ssmae_base`` — SS-MAE's two encoders (pixel tokens + band tokens) for pixel classification,
  and ``ssmae_base_mae`` to pretrain them (``spectral_masking: redundant_spectra`` for MRS).

Both families are the same :class:`SpectralViT` / :class:`SpectralMAE` with different
defaults (every default can be overridden by keyword, e.g. ``patch_size: 8``). Each family
is a source of TerraTorch's multi-source registries (like its ``timm`` and ``smp`` sources),
so ``BACKBONE_REGISTRY.build("sigmae_vit_base")`` works, and a misspelt variant gets a
``ValueError`` listing the real ones instead of a generic "not found".
"""

from __future__ import annotations

import yaml
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY, Registry

from terratorch_specmae.hub import weights_for_variant
from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.models.ssmae import SSMAE, SSMAEEncoder

VIT_SIZES = {
    "tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "large": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}
FAMILIES = {
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
MAE_ARGS = (
    "masking",
    "mask_ratio",
    "masking_options",
    "decoder_embed_dim",
    "decoder_depth",
    "decoder_num_heads",
    "decoder_pos_embed",
    "target_norm",
    "target_stats",
    "decode_fraction",
    # loading: the MAE loads encoder and decoder together (continued pretraining)
    "ckpt_path",
    "pretrained_bands",
    "pretrained_img_size",
    "new_band_init",
    "resize_pos_embed",
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


def _register_source(registry, registry_source: VariantRegistry) -> VariantRegistry:
    if registry_source.family not in registry._sources:  # importing twice must not fail
        registry.register_source(registry_source.family, registry_source)
    return registry._sources[registry_source.family]


BACKBONES = {family: _register_source(BACKBONE_REGISTRY, VariantRegistry(family)) for family in FAMILIES}
FULL_MODELS = {family: _register_source(FULL_MODEL_REGISTRY, VariantRegistry(family)) for family in FAMILIES}


def parse_command_line_values(options: dict) -> dict:
    """Options with command-line strings read as YAML, nested dicts included (``"0.5"`` → 0.5).

    ``terratorch fit --model.init_args.model_args.mask_ratio=0.75`` hands the value over as the
    string ``"0.75"`` (``model_args`` is an untyped dict), where the config file gives a float.
    Strings that YAML reads as a string stay as they are; ``*path`` values are not parsed, except
    that ``null``/``None`` (what ``--…ckpt_path=null`` hands over) means no path.
    """
    parsed = {}
    for key, value in options.items():
        if isinstance(value, dict):
            value = parse_command_line_values(value)
        elif isinstance(value, str) and key.endswith("path"):
            value = None if value.strip() in ("", "None", "null", "~") else value  # `--…ckpt_path=null` arrives as "None"
        elif isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else value
            except yaml.YAMLError:
                pass  # not YAML: keep the string, the option's own check will name the problem
        parsed[key] = value
    return parsed


def _pretrained_weights(variant: str, pretrained: bool, kwargs: dict) -> dict:
    """``pretrained: true`` without a ``ckpt_path``: the variant's registered weights (see :mod:`terratorch_specmae.hub`)."""
    if pretrained and not kwargs.get("ckpt_path"):
        kwargs = {**kwargs, "ckpt_path": weights_for_variant(variant)}
    return kwargs


def build_backbone(size: str, family: str = "s2mae", pretrained: bool = False, padding: str | None = None, **kwargs):
    """A :class:`SpectralViT` of a named size with a family's token defaults; keywords override them.

    ``padding`` is TerraTorch's (it pads inputs before the backbone) and is not ours to use.
    """
    kwargs = parse_command_line_values(kwargs)
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; expected one of {sorted(FAMILIES)}.")
    if size not in VIT_SIZES:
        raise ValueError(f"Unknown size {size!r}; expected one of {sorted(VIT_SIZES)}.")
    kwargs = _pretrained_weights(f"{family}_vit_{size}", pretrained, kwargs)
    return SpectralViT(**{**VIT_SIZES[size], **FAMILIES[family]["encoder"], **kwargs})


def build_mae(size: str, family: str = "s2mae", **kwargs) -> SpectralMAE:
    """A :class:`SpectralMAE` around :func:`build_backbone`; MAE options are split from encoder options."""
    kwargs = parse_command_line_values(kwargs)
    mae_kwargs = {**FAMILIES[family]["mae"], **{k: kwargs.pop(k) for k in MAE_ARGS if k in kwargs}}
    return SpectralMAE(build_backbone(size, family, **kwargs), **mae_kwargs)


def _add_variant(family: str, size: str) -> None:
    def backbone(**kwargs) -> SpectralViT:
        return build_backbone(size, family, **kwargs)

    def full_model(**kwargs) -> SpectralMAE:
        return build_mae(size, family, **kwargs)

    info = FAMILIES[family]
    backbone.__name__ = f"vit_{size}"
    backbone.__doc__ = f"{info['title']} ViT-{size} encoder ({VIT_SIZES[size]}), {info['tokens']}; see SpectralViT."
    full_model.__name__ = f"vit_{size}_mae"
    full_model.__doc__ = (
        f"{info['title']} ViT-{size} masked autoencoder ({info['mae']['masking']} masking by default); "
        "see SpectralMAE and SpectralViT."
    )
    BACKBONES[family].register(backbone)
    FULL_MODELS[family].register(full_model)


for _family in FAMILIES:
    for _size in VIT_SIZES:
        _add_variant(_family, _size)


SSMAE_BACKBONES = _register_source(BACKBONE_REGISTRY, VariantRegistry("ssmae"))
SSMAE_FULL_MODELS = _register_source(FULL_MODEL_REGISTRY, VariantRegistry("ssmae"))


@SSMAE_BACKBONES.register
def base(pretrained: bool = False, padding: str | None = None, **kwargs) -> SSMAEEncoder:
    """SS-MAE encoders (width 256, depth 2, 8 heads per branch) for pixel classification."""
    return SSMAEEncoder(**_pretrained_weights("ssmae_base", pretrained, parse_command_line_values(kwargs)))


def _ssmae_base_mae(**kwargs) -> SSMAE:
    """SS-MAE pretraining model (spatial + spectral MAE); ``spectral_masking: redundant_spectra`` is MRS."""
    return SSMAE(**parse_command_line_values(kwargs))


_ssmae_base_mae.__name__ = "base_mae"
SSMAE_FULL_MODELS.register(_ssmae_base_mae)
