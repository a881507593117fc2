"""TerraTorch registrations: the S2MAE and SIGMAE encoders (backbones) and masked autoencoders (full models).

* ``s2mae_vit_{tiny,small,base,large}`` — 3D cube tokens (``p = 8``, ``t = 3`` bands), and
  ``s2mae_vit_*_mae`` with random 3D masking;
* ``sigmae_vit_{tiny,small,base,large}`` — 2D patch tokens over all bands (``p = 16``), and
  ``sigmae_vit_*_mae`` with spectral-index saliency masking on a curriculum;
* ``ssmae_base`` — SS-MAE's two encoders (pixel tokens + band tokens) for pixel classification,
  and ``ssmae_base_mae`` to pretrain them (``spectral_masking: redundant_spectra`` for MRS).

Both families are the same :class:`SpectralViT` / :class:`SpectralMAE` with different
defaults (every default can be overridden by keyword, e.g. ``patch_size: 8``).

Each builder does what timm's ``build_model_with_cfg`` and TerraTorch's Prithvi builders do:
build the architecture, load weights (``ckpt_path`` or, with ``pretrained: true``, the
variant's registered weights; ``pretrained_bands``, ``pretrained_img_size``, ``new_band_init``,
``resize_pos_embed`` say how: see :func:`terratorch_specmae.weights.load_weights`), then apply
the run switches (``grad_checkpointing``, ``compile``, ``cpu_attention_kernel``: see
:mod:`terratorch_specmae.models.run_switches`). In a TerraTorch config these are the
``backbone_*`` options of ``model_args`` (``backbone_ckpt_path``, ``backbone_compile`` …), or
plain ``model_args`` of the full models. The model constructors take architecture only. Each family
is a source of TerraTorch's multi-source registries (like its ``timm`` and ``smp`` sources),
so ``BACKBONE_REGISTRY.build("sigmae_vit_base")`` works, and a misspelt variant gets a
``ValueError`` listing the real ones instead of a generic "not found".
"""

from __future__ import annotations

import inspect

import yaml
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY, Registry
from torch import nn

from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.models.run_switches import RUN_OPTIONS, apply_run_options
from terratorch_specmae.models.ssmae import SSMAE, SSMAEEncoder
from terratorch_specmae.variants import FAMILIES, SSMAE_SIZES, VIT_SIZES, variant_name
from terratorch_specmae.weights import LOAD_OPTIONS, check_load_options, load_weights, weights_for_variant

# SpectralMAE's own options (the rest go to the encoder), read from its signature, not copied by hand
MAE_ARGS = tuple(name for name in inspect.signature(SpectralMAE).parameters if name != "encoder")


class VariantRegistry(Registry):
    """A TerraTorch registry source of one family (``s2mae``, ``sigmae``, ``ssmae``).

    Builders are registered under their name without the family prefix (``def s2mae_vit_tiny``
    → ``vit_tiny``: TerraTorch's multi-source registry adds ``s2mae_`` back), and unknown names
    raise a ``ValueError`` naming the known ones.
    """

    def __init__(self, family: str) -> None:
        super().__init__()
        self.family = family

    def register(self, constructor):
        prefix = f"{self.family}_"
        if not constructor.__name__.startswith(prefix):
            raise ValueError(f"A {self.family} builder's name starts with {prefix!r}; got {constructor.__name__!r}.")
        self._registry[constructor.__name__[len(prefix) :]] = constructor
        return constructor

    def build(self, name: str, *args, **kwargs):
        if name not in self:
            known = ", ".join(f"{self.family}_{n}" for n in self)
            raise ValueError(f"Unknown model {self.family + '_' + name!r}; expected one of: {known}.")
        return super().build(name, *args, **kwargs)


def _source(registry, family: str) -> VariantRegistry:
    """The family's source of a TerraTorch registry, registered once (importing twice must not fail)."""
    if family not in registry.keys():
        registry.register_source(family, VariantRegistry(family))
    return registry[family]


BACKBONES = {family: _source(BACKBONE_REGISTRY, family) for family in (*FAMILIES, "ssmae")}
FULL_MODELS = {family: _source(FULL_MODEL_REGISTRY, family) for family in (*FAMILIES, "ssmae")}


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


def _split(options: dict, names: tuple[str, ...]) -> tuple[dict, dict]:
    """``options`` split into those named in ``names`` and the rest."""
    return {k: v for k, v in options.items() if k in names}, {k: v for k, v in options.items() if k not in names}


def _builder_options(kwargs: dict) -> tuple[dict, dict, dict]:
    """A builder's keywords (command-line strings parsed) as ``(load, run, architecture)`` options."""
    load, rest = _split(parse_command_line_values(kwargs), LOAD_OPTIONS)
    run, architecture = _split(rest, RUN_OPTIONS)
    return load, run, architecture


def _is_true(value, name: str) -> bool:
    value = parse_command_line_values({name: value})[name]  # `--…backbone_pretrained=false` arrives as "false"
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}.")
    return value


def finish(model: nn.Module, variant: str, pretrained: bool = False, load: dict | None = None, run: dict | None = None):
    """Load a built model's weights, then apply its run switches (what every builder does after building).

    ``load``: :data:`~terratorch_specmae.weights.LOAD_OPTIONS` (``ckpt_path`` …); with ``pretrained``
    and no ``ckpt_path``, ``variant``'s registered weights (:mod:`terratorch_specmae.weights.catalogue`).
    The report of the load is kept as ``model.load_report`` (None when nothing was loaded).
    ``run``: :data:`~terratorch_specmae.models.run_switches.RUN_OPTIONS`.
    """
    load = dict(load or {})
    source = load.pop("ckpt_path", None)
    check_load_options(load.get("new_band_init", "wavelength"), load.get("resize_pos_embed", "interpolate"))
    if _is_true(pretrained, "pretrained") and not source:
        source = weights_for_variant(variant)
    model.load_report = load_weights(model, source, **load) if source else None
    return apply_run_options(model, **(run or {}))


def build_backbone(size: str, family: str = "s2mae", pretrained: bool = False, padding: str | None = None, **kwargs):
    """A :class:`SpectralViT` of a named size with a family's token defaults; keywords override them.

    Load options and run switches are taken out first (see :func:`finish`). ``padding`` is
    TerraTorch's (it pads inputs before the backbone) and is not ours to use.
    """
    load, run, kwargs = _builder_options(kwargs)
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; expected one of {sorted(FAMILIES)}.")
    if size not in VIT_SIZES:
        raise ValueError(f"Unknown size {size!r}; expected one of {sorted(VIT_SIZES)}.")
    model = SpectralViT(**{**VIT_SIZES[size], **FAMILIES[family]["encoder"], **kwargs})
    return finish(model, variant_name(family, size), pretrained, load, run)


def build_mae(size: str, family: str = "s2mae", pretrained: bool = False, **kwargs) -> SpectralMAE:
    """A :class:`SpectralMAE` around a family's encoder; MAE options are split from encoder options.

    ``ckpt_path`` loads encoder *and* decoder (a pretraining checkpoint to continue from, as
    progressive pretraining does), fitted to this model's bands and image size; weights of an
    encoder alone leave the decoder fresh (with a warning)."""
    load, run, kwargs = _builder_options(kwargs)
    mae_kwargs, kwargs = _split(kwargs, MAE_ARGS)
    encoder = build_backbone(size, family, **kwargs)
    model = SpectralMAE(encoder, **{**FAMILIES[family]["mae"], **mae_kwargs})
    return finish(model, variant_name(family, size), pretrained, load, run)


def build_ssmae(mae: bool, size: str = "base", pretrained: bool = False, padding: str | None = None, **kwargs):
    """SS-MAE's encoders (:class:`SSMAEEncoder`) or pretraining model (:class:`SSMAE`, ``mae=True``)
    of a named size; load options and run switches as :func:`finish` takes them."""
    load, run, kwargs = _builder_options(kwargs)
    model = (SSMAE if mae else SSMAEEncoder)(**{**SSMAE_SIZES[size], **kwargs})
    return finish(model, variant_name("ssmae", size), pretrained, load, run)


# ---- one literal builder per registered name (the sizes and defaults are in variants.py)


@BACKBONES["s2mae"].register
def s2mae_vit_tiny(**kwargs) -> SpectralViT:
    """S2MAE ViT-tiny encoder (3D cube tokens); see SpectralViT."""
    return build_backbone("tiny", "s2mae", **kwargs)


@BACKBONES["s2mae"].register
def s2mae_vit_small(**kwargs) -> SpectralViT:
    """S2MAE ViT-small encoder (3D cube tokens); see SpectralViT."""
    return build_backbone("small", "s2mae", **kwargs)


@BACKBONES["s2mae"].register
def s2mae_vit_base(**kwargs) -> SpectralViT:
    """S2MAE ViT-base encoder (3D cube tokens); see SpectralViT."""
    return build_backbone("base", "s2mae", **kwargs)


@BACKBONES["s2mae"].register
def s2mae_vit_large(**kwargs) -> SpectralViT:
    """S2MAE ViT-large encoder (3D cube tokens); see SpectralViT."""
    return build_backbone("large", "s2mae", **kwargs)


@BACKBONES["sigmae"].register
def sigmae_vit_tiny(**kwargs) -> SpectralViT:
    """SIGMAE ViT-tiny encoder (2D patch tokens over all bands); see SpectralViT."""
    return build_backbone("tiny", "sigmae", **kwargs)


@BACKBONES["sigmae"].register
def sigmae_vit_small(**kwargs) -> SpectralViT:
    """SIGMAE ViT-small encoder (2D patch tokens over all bands); see SpectralViT."""
    return build_backbone("small", "sigmae", **kwargs)


@BACKBONES["sigmae"].register
def sigmae_vit_base(**kwargs) -> SpectralViT:
    """SIGMAE ViT-base encoder (2D patch tokens over all bands); see SpectralViT."""
    return build_backbone("base", "sigmae", **kwargs)


@BACKBONES["sigmae"].register
def sigmae_vit_large(**kwargs) -> SpectralViT:
    """SIGMAE ViT-large encoder (2D patch tokens over all bands); see SpectralViT."""
    return build_backbone("large", "sigmae", **kwargs)


@FULL_MODELS["s2mae"].register
def s2mae_vit_tiny_mae(**kwargs) -> SpectralMAE:
    """S2MAE ViT-tiny masked autoencoder (cube_random masking by default); see SpectralMAE."""
    return build_mae("tiny", "s2mae", **kwargs)


@FULL_MODELS["s2mae"].register
def s2mae_vit_small_mae(**kwargs) -> SpectralMAE:
    """S2MAE ViT-small masked autoencoder (cube_random masking by default); see SpectralMAE."""
    return build_mae("small", "s2mae", **kwargs)


@FULL_MODELS["s2mae"].register
def s2mae_vit_base_mae(**kwargs) -> SpectralMAE:
    """S2MAE ViT-base masked autoencoder (cube_random masking by default); see SpectralMAE."""
    return build_mae("base", "s2mae", **kwargs)


@FULL_MODELS["s2mae"].register
def s2mae_vit_large_mae(**kwargs) -> SpectralMAE:
    """S2MAE ViT-large masked autoencoder (cube_random masking by default); see SpectralMAE."""
    return build_mae("large", "s2mae", **kwargs)


@FULL_MODELS["sigmae"].register
def sigmae_vit_tiny_mae(**kwargs) -> SpectralMAE:
    """SIGMAE ViT-tiny masked autoencoder (saliency masking by default); see SpectralMAE."""
    return build_mae("tiny", "sigmae", **kwargs)


@FULL_MODELS["sigmae"].register
def sigmae_vit_small_mae(**kwargs) -> SpectralMAE:
    """SIGMAE ViT-small masked autoencoder (saliency masking by default); see SpectralMAE."""
    return build_mae("small", "sigmae", **kwargs)


@FULL_MODELS["sigmae"].register
def sigmae_vit_base_mae(**kwargs) -> SpectralMAE:
    """SIGMAE ViT-base masked autoencoder (saliency masking by default); see SpectralMAE."""
    return build_mae("base", "sigmae", **kwargs)


@FULL_MODELS["sigmae"].register
def sigmae_vit_large_mae(**kwargs) -> SpectralMAE:
    """SIGMAE ViT-large masked autoencoder (saliency masking by default); see SpectralMAE."""
    return build_mae("large", "sigmae", **kwargs)


@BACKBONES["ssmae"].register
def ssmae_base(**kwargs) -> SSMAEEncoder:
    """SS-MAE encoders (width 256, depth 2, 8 heads per branch) for pixel classification."""
    return build_ssmae(False, "base", **kwargs)


@FULL_MODELS["ssmae"].register
def ssmae_base_mae(**kwargs) -> SSMAE:
    """SS-MAE pretraining model (spatial + spectral MAE); ``spectral_masking: redundant_spectra`` is MRS."""
    return build_ssmae(True, "base", **kwargs)
