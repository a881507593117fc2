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
build the architecture, load weights (``ckpt_path`` or, with ``pretrained: true``, weights of the
catalogue: :mod:`terratorch_specmae.weights.published`; ``pretrained_bands``,
``pretrained_img_size``, ``new_band_init``, ``resize_pos_embed`` say how: see
:func:`terratorch_specmae.weights.load_weights`), then apply the run switches
(``grad_checkpointing``, ``compile``, ``cpu_attention_kernel``: see
:mod:`terratorch_specmae.models.run_switches`).

Catalogue weights are named timm-style, ``<variant>.<tag>`` (``s2mae_vit_base.spectralgpt``,
``sigmae_vit_large.ssl4eo_s12_fgmae``); ``pretrained: true`` on a name without a tag loads the
variant's default weights. As in timm, the tag picks the weights and ``pretrained: true`` loads
them; the weights' architecture (patch and cube sizes, decoder) and, unless the config gives them,
their bands and image size become the model's, so the weights load exactly and other bands or
sizes are fitted by name and wavelength.

Keys of TerraTorch's Prithvi backbones that a stock Prithvi config carries
(``backbone_coords_encoding: []`` …) are accepted at their neutral values and refused otherwise
(:data:`PRITHVI_ONLY_OPTIONS`), so swapping the backbone name is enough for the model to build
(the input scaling the weights expect is the datamodule's to match). In a TerraTorch config these are the
``backbone_*`` options of ``model_args`` (``backbone_ckpt_path``, ``backbone_compile`` …), or
plain ``model_args`` of the full models. The model constructors take architecture only. Each family
is a source of TerraTorch's multi-source registries (like its ``timm`` and ``smp`` sources),
so ``BACKBONE_REGISTRY.build("sigmae_vit_base")`` works, and a misspelt variant gets a
``ValueError`` listing the real ones instead of a generic "not found".
"""

from __future__ import annotations

import inspect
import json
import warnings

import yaml
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY, Registry
from torch import nn

from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.models.run_switches import RUN_OPTIONS, apply_run_options
from terratorch_specmae.models.ssmae import SSMAE, SSMAEEncoder
from terratorch_specmae.variants import FAMILIES, SSMAE_SIZES, VIT_SIZES, variant_name
from terratorch_specmae.weights import (
    LOAD_OPTIONS,
    PRETRAINED_CFGS,
    PretrainedCfg,
    check_load_options,
    fetch_pretrained,
    load_weights,
    pretrained_cfg,
    split_tag,
)

# SpectralMAE's own options (the rest go to the encoder), read from its signature, not copied by hand
MAE_ARGS = tuple(name for name in inspect.signature(SpectralMAE).parameters if name != "encoder")


class VariantRegistry(Registry):
    """A TerraTorch registry source of one family (``s2mae``, ``sigmae``, ``ssmae``).

    Builders are registered under their name without the family prefix (``def s2mae_vit_tiny``
    → ``vit_tiny``: TerraTorch's multi-source registry adds ``s2mae_`` back), and unknown names
    raise a ``ValueError`` naming the known ones. A name may end in a catalogue tag
    (``vit_base.spectralgpt``): the builder receives it as ``pretrained_tag``.
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

    def __contains__(self, name) -> bool:
        try:
            base, tag = split_tag(name)
        except (ValueError, AttributeError):
            return False
        return base in self._registry and (tag is None or tag in PRETRAINED_CFGS.get(f"{self.family}_{base}", {}))

    def build(self, name: str, *args, **kwargs):
        base, tag = split_tag(name)
        if base not in self._registry:
            known = ", ".join(f"{self.family}_{n}" for n in self)
            raise ValueError(f"Unknown model {self.family + '_' + name!r}; expected one of: {known}.")
        if tag is not None:
            pretrained_cfg(f"{self.family}_{base}", tag)  # an unknown tag: an error naming the variant's tags
            kwargs["pretrained_tag"] = tag
        return super().build(base, *args, **kwargs)


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


#: Keys of TerraTorch's Prithvi backbones, which stock Prithvi configs carry, that our encoders cannot honour:
#: each is accepted at its neutral values (and ignored) and refused otherwise, with what it means for us.
PRITHVI_ONLY_OPTIONS: dict[str, tuple[tuple, str]] = {
    "coords_encoding": (([], None), "our encoders take no time or location coordinates"),
    "coords_scale_learn": ((False,), "our encoders take no time or location coordinates"),
    "encoder_only": ((True,), "our backbones are encoders; the MAE is the registered <name>_mae full model"),
    "vit_adapter": ((False,), "our encoders have no ViT-Adapter"),
    "vpt": ((False,), "our encoders have no visual prompt tokens"),
    "vpt_n_tokens": ((None, 0), "our encoders have no visual prompt tokens"),
    "vpt_dropout": ((None, 0, 0.0), "our encoders have no visual prompt tokens"),
}


def _is_neutral(value, neutral: tuple) -> bool:
    for n in neutral:
        if n is None or isinstance(n, bool):
            if value is n:
                return True
        elif isinstance(n, list):
            if isinstance(value, list | tuple) and list(value) == n:
                return True
        elif isinstance(value, int | float) and not isinstance(value, bool) and value == n:
            return True
    return False


def _prithvi_options(options: dict, variant: str) -> dict:
    """``options`` without Prithvi-only keys at their neutral values; any other value of one is an error.
    A Prithvi-style ``patch_size: [1, p, p]`` (one date per patch) becomes ``p``."""
    rest = {}
    for key, value in options.items():
        if key not in PRITHVI_ONLY_OPTIONS:
            rest[key] = value
            continue
        neutral, why = PRITHVI_ONLY_OPTIONS[key]
        if not _is_neutral(value, neutral):
            raise ValueError(
                f"backbone_{key}: {json.dumps(value)} ({key} in a full model's model_args) is a Prithvi option that "
                f"{variant} cannot honour ({why}). Remove it, or set it to {' or '.join(json.dumps(n) for n in neutral)}."
            )
    patch = rest.get("patch_size")
    if isinstance(patch, list | tuple):
        if len(patch) == 3 and patch[0] == 1 and patch[1] == patch[2]:
            rest["patch_size"] = int(patch[1])
        else:
            raise ValueError(
                f"patch_size {list(patch)}: {variant} takes one square patch side (e.g. 16), or Prithvi's [1, p, p] "
                "(one date per patch); for time series use backbone_use_temporal: true."
            )
    return rest


def _builder_options(kwargs: dict, variant: str) -> tuple[dict, dict, dict]:
    """A builder's keywords (command-line strings parsed) as ``(load, run, architecture)`` options."""
    load, rest = _split(parse_command_line_values(kwargs), LOAD_OPTIONS)
    run, architecture = _split(rest, RUN_OPTIONS)
    return load, run, _prithvi_options(architecture, variant)


def _is_true(value, name: str) -> bool:
    value = parse_command_line_values({name: value})[name]  # `--…backbone_pretrained=false` arrives as "false"
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}.")
    return value


def catalogue_weights(variant: str, pretrained, tag: str | None, load: dict) -> PretrainedCfg | None:
    """The catalogue entry whose architecture a builder's model takes: ``variant.tag`` whenever a tag is
    given (with or without ``pretrained``, with or without a ``ckpt_path`` to load instead), or with
    ``pretrained`` and no tag the variant's default (unless ``ckpt_path`` names other weights); else None.

    A tagged name is thus one architecture whatever the switches, so a run rebuilt for export or
    deployment (``pretrained`` off, the tag kept) is the model that was trained."""
    wanted = pretrained is not None and _is_true(pretrained, "pretrained")
    if tag is None:
        return pretrained_cfg(variant) if wanted and not load.get("ckpt_path") else None
    entry = pretrained_cfg(variant, tag)
    if pretrained is None and not load.get("ckpt_path"):
        warnings.warn(
            f"{variant}.{tag} names pretrained weights but pretrained is not set: the model is built with their "
            "architecture and initialised at random (timm's rule). Set pretrained: true (backbone_pretrained: true) "
            "to load them.",
            stacklevel=4,
        )
    return entry


def weights_architecture(entry: PretrainedCfg | None, given: dict) -> dict:
    """What the weights need of the architecture (``entry.model_args``, their bands and image size), for the
    keys the config does not set itself."""
    if entry is None:
        return {}
    defaults = dict(entry.model_args or {})
    if entry.bands and "bands" not in given and "in_chans" not in given:
        defaults["bands"] = list(entry.bands)
    if entry.img_size and "img_size" not in given:
        defaults["img_size"] = list(entry.img_size)
    return {k: v for k, v in defaults.items() if k not in given}


def factory_call() -> dict | None:
    """The arguments of the TerraTorch ``EncoderDecoderFactory.build_model`` call building this backbone, if any.

    Read from that call's frame: the factory hands its backbone no word of the neck chain or of the
    decoder's options, and what is wrong with them together is only visible there. None when the
    backbone is built another way (directly, by another factory)."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            names = frame.f_locals
            if frame.f_code.co_name == "build_model" and "necks" in names and "backbone" in names:
                return dict(names)
            frame = frame.f_back
        return None
    finally:
        del frame


def check_factory_options(call: dict) -> None:
    """Refuse decoder and head options that arrive as text but mean numbers or lists.

    A command-line override of an entry of ``model_args`` (``--model.init_args.model_args.decoder_channels=64``)
    reaches TerraTorch as the string ``"64"`` (``model_args`` is an untyped dict); our backbone reads
    its own ``backbone_*`` options as YAML, but the decoder takes the string as given and fails far
    from the cause (``not all arguments converted during string formatting``)."""
    options = {**call.get("kwargs", {}), "num_classes": call.get("num_classes"), "num_outputs": call.get("num_outputs")}
    parsed = parse_command_line_values(options)  # what the text means, as our own options are read
    for name, value in options.items():
        meant = parsed[name]
        if not isinstance(value, str) or name.startswith("backbone_"):
            continue
        if isinstance(meant, int | float | list | dict) and not isinstance(meant, bool):
            raise ValueError(
                f"model_args.{name} is the string {value!r}, expected {type(meant).__name__} {meant!r}: a command-line "
                f"override of a model_args entry (--model.init_args.model_args.{name}=…) arrives as text, and "
                "TerraTorch's decoder takes it as given. Write it in the config file's model_args instead "
                f"({name}: {meant!r})."
            )


def check_neck_chain(model: SpectralViT, necks: list | None) -> None:
    """Refuse ``fold: none`` (cube tokens ``[B, G·h·w, D]``) before a ``ReshapeTokensToImage`` that no
    ``FoldSpectralGroups`` precedes: TerraTorch's neck reshapes the token sequence into one square
    map, laying the G spectral groups out as G separate regions of it (each quarter a different group
    for G = 4), and the decoder then trains on that without a word."""
    if model.fold != "none" or model.groups == 1 or not necks:
        return
    names = [neck.get("name") if isinstance(neck, dict) else type(neck).__name__ for neck in necks]
    for name in names:
        if name == "FoldSpectralGroups":
            return
        if name == "ReshapeTokensToImage":
            raise ValueError(
                f"backbone_fold: none gives cube tokens [B, {model.groups}·h·w, D] ({model.groups} spectral groups per "
                f"location), and the neck ReshapeTokensToImage (necks: {names}) would reshape them into one map with "
                f"each group in a separate region of it. Put {{name: FoldSpectralGroups, groups: {model.groups}}} "
                "before ReshapeTokensToImage in necks, or set backbone_fold: concat (G·D channels per location) "
                "or mean (D channels)."
            )


def finish(
    model: nn.Module,
    variant: str,
    pretrained=False,
    load: dict | None = None,
    run: dict | None = None,
    entry: PretrainedCfg | None = None,
):
    """Load a built model's weights, then apply its run switches (what every builder does after building).

    ``load``: :data:`~terratorch_specmae.weights.LOAD_OPTIONS` (``ckpt_path`` …); with ``pretrained``
    and no ``ckpt_path``, the catalogue's ``entry`` (:mod:`terratorch_specmae.weights.catalogue`),
    which also becomes the model's ``pretrained_cfg`` (its model card's source, licence, citation).
    The report of the load is kept as ``model.load_report`` (None when nothing was loaded).
    ``run``: :data:`~terratorch_specmae.models.run_switches.RUN_OPTIONS`.
    """
    load = dict(load or {})
    source = load.pop("ckpt_path", None)
    check_load_options(load.get("new_band_init", "wavelength"), load.get("resize_pos_embed", "interpolate"))
    if pretrained is not None and _is_true(pretrained, "pretrained") and not source:
        if entry is None:
            entry = pretrained_cfg(variant)
        source = fetch_pretrained(entry)
        model.pretrained_cfg = PretrainedCfg.from_dict(entry.to_dict())
    model.load_report = load_weights(model, source, **load) if source else None
    return apply_run_options(model, **(run or {}))


def build_backbone(
    size: str,
    family: str = "s2mae",
    pretrained=None,
    padding: str | None = None,
    pretrained_tag: str | None = None,
    **kwargs,
):
    """A :class:`SpectralViT` of a named size with a family's token defaults; keywords override them.

    Load options and run switches are taken out first (see :func:`finish`); ``pretrained`` /
    ``pretrained_tag`` pick catalogue weights, whose architecture, bands and image size the model
    takes unless given. ``padding`` is TerraTorch's (it pads inputs before the backbone) and is not
    ours to use.
    """
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; expected one of {sorted(FAMILIES)}.")
    if size not in VIT_SIZES:
        raise ValueError(f"Unknown size {size!r}; expected one of {sorted(VIT_SIZES)}.")
    variant = variant_name(family, size)
    load, run, kwargs = _builder_options(kwargs, variant)
    entry = catalogue_weights(variant, pretrained, pretrained_tag, load)
    kwargs = {**weights_architecture(entry, kwargs), **kwargs}
    model = SpectralViT(**{**VIT_SIZES[size], **FAMILIES[family]["encoder"], **kwargs})
    call = factory_call()
    if call is not None:
        check_neck_chain(model, call.get("necks"))
        check_factory_options(call)
    return finish(model, variant, pretrained, load, run, entry)


def build_mae(size: str, family: str = "s2mae", pretrained=None, pretrained_tag: str | None = None, **kwargs) -> SpectralMAE:
    """A :class:`SpectralMAE` around a family's encoder; MAE options are split from encoder options.

    ``ckpt_path`` loads encoder *and* decoder (a pretraining checkpoint to continue from, as
    progressive pretraining does), fitted to this model's bands and image size; weights of an
    encoder alone leave the decoder fresh (with a warning). Catalogue weights: as :func:`build_backbone`."""
    variant = variant_name(family, size, mae=True)
    load, run, kwargs = _builder_options(kwargs, variant)
    entry = catalogue_weights(variant, pretrained, pretrained_tag, load)
    kwargs = {**weights_architecture(entry, kwargs), **kwargs}
    mae_kwargs, kwargs = _split(kwargs, MAE_ARGS)
    encoder = build_backbone(size, family, **kwargs)
    model = SpectralMAE(encoder, **{**FAMILIES[family]["mae"], **mae_kwargs})
    return finish(model, variant, pretrained, load, run, entry)


def build_ssmae(
    mae: bool, size: str = "base", pretrained=None, padding: str | None = None, pretrained_tag: str | None = None, **kwargs
):
    """SS-MAE's encoders (:class:`SSMAEEncoder`) or pretraining model (:class:`SSMAE`, ``mae=True``)
    of a named size; load options, run switches and catalogue weights as :func:`build_backbone` takes them."""
    variant = variant_name("ssmae", size, mae=mae)
    load, run, kwargs = _builder_options(kwargs, variant)
    entry = catalogue_weights(variant, pretrained, pretrained_tag, load)
    architecture = weights_architecture(entry, kwargs)
    architecture.pop("img_size", None)  # SS-MAE's size is its window_size
    kwargs = {**architecture, **kwargs}
    model = (SSMAE if mae else SSMAEEncoder)(**{**SSMAE_SIZES[size], **kwargs})
    return finish(model, variant, pretrained, load, run, entry)


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
