"""The pretrained-weights catalogue: what a set of weights is and where it lives, per registered variant and tag.

* :class:`PretrainedCfg` — where a set of weights lives (a Hub repo, file and revision, or a
  Zenodo record and file) and what it was trained on (bands with wavelengths, input scaling and
  statistics, image size, data, masking), its licence and citation; like timm's ``pretrained_cfg``.
* :data:`PRETRAINED_CFGS` maps a variant name (``s2mae_vit_base`` …) to its tags
  (``spectralgpt_plus`` …), each a :class:`PretrainedCfg`; :data:`DEFAULT_TAGS` names the tag
  ``backbone_pretrained: true`` loads when the name carries none. A tag is written timm-style after
  the variant: ``backbone: s2mae_vit_base.spectralgpt`` (see :func:`split_tag`).
* The public weights we know are registered by :mod:`terratorch_specmae.weights.published`;
  :func:`register_pretrained_cfg` adds your own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from terratorch_specmae.bands import band_info, resolve_bands

#: how the input must be scaled before the model, as the weights were pretrained (``PretrainedCfg.scaling``)
SCALINGS = {
    "standardize": "(x − mean) / std per band, with the mean and std given",
    "minmax_per_image": "each image's bands min–max scaled to [0, 1] on their own (per image and band)",
}


@dataclass
class PretrainedCfg:
    """A set of pretrained weights: where it is, what it was trained on, and on what terms.

    Where: ``hf_hub_id`` / ``filename`` / ``revision`` locate it on the Hub (``filename`` ``None``:
    a ``save_pretrained`` folder); or ``zenodo_record`` / ``filename`` on Zenodo (downloaded with
    the record's published checksum; ``md5`` pins it). ``converter`` names the row of
    :data:`terratorch_specmae.weights.layouts.LAYOUTS` the file's keys follow when they are not
    ours (``spectralgpt``, ``timm-vit``). ``model_args``: the architecture the weights need (our
    builders' keywords), applied unless a config sets them.

    What: ``bands`` (names; ``wavelengths_nm`` derived), ``scaling`` (a key of :data:`SCALINGS`)
    with ``mean`` / ``std`` per band in ``bands`` order (the units of the data the datamodule
    reads; give the same to the fine-tuning datamodule), ``img_size``, ``pretraining_data``,
    ``masking`` / ``mask_ratio``. Terms: ``license`` (a Hub licence identifier such as
    ``cc-by-4.0``, or ``other`` with ``terms`` saying what applies), ``citation``, ``source``,
    ``datasets`` (Hub dataset ids). ``tag``: the catalogue name the weights were registered under
    (``s2mae_vit_base.spectralgpt_plus``). All of it goes into the model card of what is trained
    from them.
    """

    hf_hub_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    zenodo_record: str | None = None
    md5: str | None = None
    converter: str | None = None
    model_args: dict | None = None
    bands: list[str] | None = None
    scaling: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    img_size: list[int] | None = None
    pretraining_data: str | None = None
    masking: str | None = None
    mask_ratio: float | None = None
    source: str | None = None
    license: str | None = None
    terms: str | None = None
    citation: str | None = None
    datasets: list[str] | None = None
    tag: str | None = None

    @property
    def wavelengths_nm(self) -> list[float | None] | None:
        if self.bands is None:
            return None
        return [None if math.isnan(w := band_info(b).wavelength_nm) else w for b in self.bands]

    @property
    def scaling_text(self) -> str | None:
        """What the datamodule must do to the input, in words (None when not recorded)."""
        if self.scaling is None:
            return SCALINGS["standardize"] if self.mean and self.std else None
        return SCALINGS.get(self.scaling, self.scaling)

    @property
    def location(self) -> str:
        """Where the file is, for messages: ``Hub repo org/name (file, revision)`` or ``Zenodo record N, file``."""
        if self.zenodo_record:
            return f"Zenodo record {self.zenodo_record}, file {self.filename}"
        if self.hf_hub_id:
            return f"Hub repo {self.hf_hub_id}" + (f", file {self.filename}" if self.filename else "") + (
                f", revision {self.revision}" if self.revision else ""
            )
        return "nowhere recorded"

    def reference(self) -> dict:
        if not self.hf_hub_id:
            raise ValueError("This PretrainedCfg names no Hub repository (hf_hub_id).")
        return {"repo_id": self.hf_hub_id, "filename": self.filename, "revision": self.revision}

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if self.bands is not None:
            data["wavelengths_nm"] = self.wavelengths_nm
        return data

    @classmethod
    def from_dict(cls, data: Mapping | None) -> PretrainedCfg:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


PRETRAINED_CFGS: dict[str, dict[str, PretrainedCfg]] = {}  # variant → tag → weights
DEFAULT_TAGS: dict[str, str] = {}  # variant → the tag `pretrained: true` loads when the name has none


def split_tag(name: str) -> tuple[str, str | None]:
    """``"s2mae_vit_base.spectralgpt"`` → ``("s2mae_vit_base", "spectralgpt")``; no tag → ``(name, None)``."""
    base, dot, tag = name.partition(".")
    if dot and not tag:
        raise ValueError(f"Model name {name!r} ends with '.': expected '<variant>.<weights tag>' or just '<variant>'.")
    return base, (tag or None)


def register_pretrained_cfg(variant: str, cfg: PretrainedCfg, tag: str | None = None, default: bool = True) -> None:
    """Make ``variant.tag`` (and, with ``default``, ``backbone_pretrained: true`` of ``variant``) load ``cfg``.

    ``tag`` defaults to ``cfg.tag``'s part after the dot, else ``"custom"``.
    """
    if "." in variant:
        raise ValueError(f"Register under the variant name without a tag: got {variant!r}.")
    tag = tag or (split_tag(cfg.tag)[1] if cfg.tag else None) or "custom"
    if not tag.replace("_", "").isalnum():
        raise ValueError(f"A weights tag is letters, digits and '_': got {tag!r}.")
    if cfg.bands is not None:
        cfg.bands = list(resolve_bands(cfg.bands))
    if cfg.scaling is not None and cfg.scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {sorted(SCALINGS)}, got {cfg.scaling!r}.")
    cfg.tag = f"{variant}.{tag}"
    PRETRAINED_CFGS.setdefault(variant, {})[tag] = cfg
    if default or variant not in DEFAULT_TAGS:
        DEFAULT_TAGS[variant] = tag


def pretrained_tags(variant: str) -> list[str]:
    """The tags registered for ``variant`` (the default first)."""
    tags = sorted(PRETRAINED_CFGS.get(variant, {}))
    default = DEFAULT_TAGS.get(variant)
    return ([default] if default in tags else []) + [t for t in tags if t != default]


def pretrained_cfg(variant: str, tag: str | None = None) -> PretrainedCfg:
    """The weights registered as ``variant.tag`` (no tag: the variant's default); unknown ones are a ValueError."""
    tags = PRETRAINED_CFGS.get(variant, {})
    if tag is None:
        if variant not in DEFAULT_TAGS:
            with_weights = sorted(f"{v}.{t}" for v, ts in PRETRAINED_CFGS.items() for t in ts)
            raise ValueError(
                f"No pretrained weights are registered for {variant!r}. Weights there are: "
                f"{', '.join(with_weights) or 'none'}. Load your own with backbone_ckpt_path (a file, a save_pretrained "
                "folder, hf://org/repo[/file]), or register some with terratorch_specmae.weights.register_pretrained_cfg."
            )
        tag = DEFAULT_TAGS[variant]
    if tag not in tags:
        known = ", ".join(f"{variant}.{t}" for t in pretrained_tags(variant)) or "none"
        raise ValueError(f"Unknown weights {variant}.{tag}: {variant!r} has these registered: {known}.")
    return tags[tag]


def entry_of_run(model_args: Mapping) -> PretrainedCfg | None:
    """The catalogue weights a run started from, read off its ``model_args`` (a fine-tuning run's
    ``backbone`` + ``backbone_pretrained``, or a pretraining run's ``model`` + ``pretrained``), without
    downloading anything; None when it started from none (or from a ``ckpt_path`` of its own)."""
    for name_key, prefix in (("backbone", "backbone_"), ("model", "")):
        name = model_args.get(name_key)
        if not isinstance(name, str):
            continue
        pretrained = model_args.get(f"{prefix}pretrained")
        if model_args.get(f"{prefix}ckpt_path") or str(pretrained).lower() not in ("true", "1"):
            return None
        variant, tag = split_tag(name)
        try:
            return pretrained_cfg(variant, tag)
        except ValueError:
            return None
    return None
