"""Model cards: what a model's weights are, written beside them (``README.md``) and into their metadata.

:func:`card_cfg` completes a model's :class:`~terratorch_specmae.weights.catalogue.PretrainedCfg`
with its own bands, image size and masking; :func:`render_model_card` writes the card: bands with
centre wavelengths and normalisation, pretraining data, masking, and how to use the weights in a
TerraTorch config and in Python. A model supplies its own lines (``family_tag``,
``card_summary``, ``card_architecture``, ``card_variant``, ``card_masking``).
"""

from __future__ import annotations

import json
import re

from huggingface_hub import ModelCardData

from terratorch_specmae.bands import sensors_of
from terratorch_specmae.weights.adaptation import match_band
from terratorch_specmae.weights.catalogue import PretrainedCfg

#: Hub tag of each sensor preset (``bands.SENSOR_PRESETS``) a model's bands fall within.
SENSOR_TAGS = {
    "sentinel2": "sentinel-2", "sentinel2_l2a": "sentinel-2", "landsat7": "landsat-7", "landsat8": "landsat-8",
    "landsat9": "landsat-9", "hls": "hls",
}  # fmt: skip
HYPERSPECTRAL_MIN_BANDS = 30  # no preset holds the bands and there are at least this many: tagged hyperspectral
_LICENCE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")  # the Hub's identifiers: apache-2.0, cc-by-4.0, mit, other, …
_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def sensor_tags(bands) -> list[str]:
    """Hub tags for the sensors ``bands`` come from: each preset that holds them all, else
    ``hyperspectral`` for many bands, else ``multispectral``."""
    tags = sorted({SENSOR_TAGS[name] for name in sensors_of(bands) if name in SENSOR_TAGS})
    if tags:
        return tags
    return ["hyperspectral"] if len(bands) >= HYPERSPECTRAL_MIN_BANDS else ["multispectral"]


def card_data(model, card: PretrainedCfg) -> ModelCardData:
    """The card's metadata, the fields the Hub filters on: ``library_name``, ``license``, ``tags``
    (ours, the model family's and the sensor's), ``datasets``, ``pipeline_tag``. A licence or a
    dataset id the Hub would not read is an error here, not a card that silently fails to list."""
    if card.license is not None and not _LICENCE_ID.match(card.license):
        raise ValueError(
            f"Model card licence {card.license!r} is not a Hub licence identifier: expected a lower-case id such as "
            "'apache-2.0', 'mit', 'cc-by-4.0' or 'other' (https://huggingface.co/docs/hub/repositories-licenses)."
        )
    for dataset in card.datasets or []:
        if not isinstance(dataset, str) or not _DATASET_ID.match(dataset):
            raise ValueError(f"Model card dataset {dataset!r} is not a Hub dataset id: expected 'name' or 'org/name'.")
    tags = set(model._hub_mixin_info.model_card_data.tags or []) | {model.family_tag()} | set(sensor_tags(card.bands or []))
    return ModelCardData(
        library_name="terratorch-specmae",
        license=card.license,
        tags=sorted(tags),
        datasets=list(card.datasets) if card.datasets else None,
        pipeline_tag="image-feature-extraction",
    )


def card_cfg(model) -> PretrainedCfg:
    """``model``'s :class:`PretrainedCfg` completed with its own bands, image size and masking."""
    cfg = PretrainedCfg.from_dict(model.pretrained_cfg.to_dict() if model.pretrained_cfg else {})
    bands = list(model.bands)
    if cfg.bands is not None and list(cfg.bands) != bands:  # statistics of other bands (the weights' own): by name
        for what in ("mean", "std"):
            values = getattr(cfg, what)
            if values is not None:
                matched = [match_band(b, cfg.bands) for b in bands]  # by name, then by spectral key (BLUE ← B02)
                fits = len(values) == len(cfg.bands)
                setattr(cfg, what, [None if i is None else values[i] for i in matched] if fits else None)
    cfg.bands = bands
    size = getattr(model, "img_size", None) or (model.window_size, model.window_size)
    cfg.img_size = list(size)
    masking, ratio = model.card_masking()
    if masking:
        cfg.masking, cfg.mask_ratio = masking, ratio
    # where it is now is the folder itself, in our own layout
    cfg.hf_hub_id = cfg.filename = cfg.revision = cfg.zenodo_record = cfg.md5 = cfg.converter = cfg.model_args = None
    return cfg


MODEL_CARD = """---
{front_matter}
---

# {title}

{summary}

| | |
|---|---|
| model | `{class_name}`{architecture} |
| image size | {img_size} |
| bands | {n_bands}: {band_list} |
| input scaling | {normalisation} |
| pretraining data | {pretraining_data} |
| masking | {masking} |
| weights from | {source} |
| licence | {license} |
{citation}
## Bands

| band | centre wavelength (nm) | mean | std |
|---|---|---|---|
{band_rows}

Inputs are the bands above, in this order, scaled as the table says ({normalisation_short}).
Other band sets load too: the weights are fitted by band name and wavelength (see
terratorch-specmae's README, "Weights").

## Use

In a TerraTorch config (`terratorch fit -c …`):

```yaml
model_args:
  backbone: {variant}
  backbone_ckpt_path: hf://{repo_id}
  backbone_bands: {bands_yaml}
```

In Python:

```python
import terratorch_specmae
from terratorch_specmae.{module} import {class_name}

model = {class_name}.from_pretrained("{repo_id}")
```

Made with [terratorch-specmae](https://github.com/terratorch-specmae/terratorch-specmae), a TerraTorch plugin.
"""


def _scaling(card: PretrainedCfg, short: bool = False) -> str:
    if card.scaling == "minmax_per_image":
        return "min–max per image and band" if short else card.scaling_text
    if card.mean and card.std and None not in card.mean and None not in card.std:
        return "(x − mean) / std per band, below" if short else "(x − mean) / std per band, with the mean and std below"
    if card.mean and card.std:
        return "(x − mean) / std per band, below (– : none recorded for that band)"
    return "not recorded" if short else "not recorded (set pretrained_cfg.mean/std or scaling)"


def render_model_card(model, card: PretrainedCfg, repo_id: str) -> str:
    """The model card (``README.md``) of ``model`` with what ``card`` records, its usage lines naming ``repo_id``."""
    bands, mean, std = card.bands or [], card.mean, card.std
    wavelengths = card.wavelengths_nm or [None] * len(bands)
    fmt = lambda v: "–" if v is None else f"{v:g}"  # noqa: E731
    rows = "\n".join(
        f"| {b} | {fmt(w)} | {fmt(mean[i] if mean else None)} | {fmt(std[i] if std else None)} |"
        for i, (b, w) in enumerate(zip(bands, wavelengths))
    )
    front_matter = card_data(model, card).to_yaml()
    size = card.img_size or []
    return MODEL_CARD.format(
        front_matter=front_matter,
        title=f"{model.family_tag().upper()} {type(model).__name__}",
        summary=model.card_summary(),
        class_name=type(model).__name__,
        module=type(model).__module__.removeprefix("terratorch_specmae."),
        architecture=model.card_architecture(),
        img_size="×".join(str(s) for s in size) + " px" if size else "not recorded",
        n_bands=len(bands),
        band_list=", ".join(f"`{b}`" for b in bands),
        normalisation=_scaling(card),
        normalisation_short=_scaling(card, short=True),
        pretraining_data=card.pretraining_data or "not recorded",
        masking=f"{card.masking}, ratio {card.mask_ratio:g}" if card.masking and card.mask_ratio is not None else (card.masking or "not recorded"),
        source=card.source or "pretrained with terratorch-specmae",
        license=(card.license or "not recorded") + (f" — {card.terms}" if card.terms else ""),
        citation=f"\nCite: {card.citation}\n" if card.citation else "",
        band_rows=rows,
        variant=model.card_variant(),
        repo_id=repo_id,
        bands_yaml=json.dumps(bands),
    )
