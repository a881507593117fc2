"""The pretrained-weights catalogue: what a set of weights is and where it lives, per registered variant.

* :class:`PretrainedCfg` — where a variant's weights live (Hub repo, file, revision) and what
  they were trained on (bands with wavelengths, normalisation, image size, data, masking); like
  timm's ``pretrained_cfg``.
* :data:`PRETRAINED_CFGS` maps variant names (``s2mae_vit_base`` …) to one;
  ``backbone_pretrained: true`` resolves it through :func:`weights_for_variant`. No weights of
  ours are published yet, so the table starts empty: :func:`register_pretrained_cfg` adds an
  entry (a Hub repo of your own, a converted SpectralGPT checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from terratorch_specmae.bands import band_info, resolve_bands


@dataclass
class PretrainedCfg:
    """A set of pretrained weights: where it is and what it was trained on.

    ``hf_hub_id`` / ``filename`` / ``revision`` locate it on the Hub (``filename`` ``None``: a
    ``save_pretrained`` folder). ``mean`` / ``std`` are the per-band input statistics of the
    pretraining data (in the units the datamodule reads, before its normalisation), in ``bands``
    order: give the same to the fine-tuning datamodule. ``license`` (a Hub licence identifier such
    as ``apache-2.0``) and ``datasets`` (Hub dataset ids) go into the model card's metadata.
    """

    hf_hub_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    bands: list[str] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    img_size: list[int] | None = None
    pretraining_data: str | None = None
    masking: str | None = None
    mask_ratio: float | None = None
    source: str | None = None
    license: str | None = None
    datasets: list[str] | None = None

    @property
    def wavelengths_nm(self) -> list[float | None] | None:
        if self.bands is None:
            return None
        return [None if math.isnan(w := band_info(b).wavelength_nm) else w for b in self.bands]

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


PRETRAINED_CFGS: dict[str, PretrainedCfg] = {}


def register_pretrained_cfg(variant: str, cfg: PretrainedCfg) -> None:
    """Make ``backbone_pretrained: true`` of ``variant`` (e.g. ``"s2mae_vit_base"``) load ``cfg``."""
    if cfg.bands is not None:
        cfg.bands = list(resolve_bands(cfg.bands))
    PRETRAINED_CFGS[variant] = cfg


def pretrained_cfg(variant: str) -> PretrainedCfg:
    if variant not in PRETRAINED_CFGS:
        registered = sorted(PRETRAINED_CFGS) or "none yet"
        raise ValueError(
            f"No pretrained weights are registered for {variant!r} (registered: {registered}). Load your own with "
            "backbone_ckpt_path (a file, a save_pretrained folder, hf://org/repo[/file]), or register a Hub repo with "
            "terratorch_specmae.weights.register_pretrained_cfg."
        )
    return PRETRAINED_CFGS[variant]
