"""Weights on the Hugging Face Hub: pretrained configs per variant, Hub references, publishing.

* :class:`PretrainedCfg` — where a variant's weights live (Hub repo, file, revision) and what
  they were trained on (bands with wavelengths, normalisation, image size, data, masking); like
  timm's ``pretrained_cfg``. :data:`PRETRAINED_CFGS` maps variant names (``s2mae_vit_base`` …)
  to one; ``backbone_pretrained: true`` resolves it. No weights of ours are published yet, so the
  table starts empty: :func:`register_pretrained_cfg` adds an entry (a Hub repo of your own, a
  converted SpectralGPT checkpoint).
* :func:`resolve_weights` turns a weights reference into a local path through
  ``huggingface_hub`` (its cache, ``revision``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``).
* :class:`HubMixin` — ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for our models,
  huggingface_hub's ``PyTorchModelHubMixin`` convention: ``config.json`` + ``model.safetensors``
  + a model card (``README.md``) stating bands, wavelengths, normalisation, pretraining data and
  masking. Loading goes through :func:`~terratorch_specmae.checkpoints.load_weights`, so a
  published model loads into another band set or image size, and key mismatches are reported.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HfUriError,
    HFValidationError,
    LocalEntryNotFoundError,
)
from huggingface_hub.utils import parse_hf_uri

from terratorch_specmae.adaptation import SourceLayout
from terratorch_specmae.atomic import atomic_folder, atomic_path, atomic_write_text
from terratorch_specmae.bands import band_info, resolve_bands
from terratorch_specmae.checkpoints import (
    CONFIG_NAME,
    METADATA_KEY,
    WEIGHTS_NAME,
    WeightsFile,
    load_weights,
    read_config,
    read_weights,
)

MODEL_CARD_NAME = "README.md"
SAVED_FILES = (CONFIG_NAME, WEIGHTS_NAME, MODEL_CARD_NAME)  # all that save_pretrained writes into a folder
LOAD_OPTIONS = ("ckpt_path", "pretrained_bands", "pretrained_img_size", "new_band_init", "resize_pos_embed")
RUN_OPTIONS = ("compile", "cpu_attention_kernel")  # how to run a model here, not what it is: not published


@dataclass
class PretrainedCfg:
    """A set of pretrained weights: where it is and what it was trained on.

    ``hf_hub_id`` / ``filename`` / ``revision`` locate it on the Hub (``filename`` ``None``: a
    ``save_pretrained`` folder). ``mean`` / ``std`` are the per-band input statistics of the
    pretraining data (in the units the datamodule reads, before its normalisation), in ``bands``
    order: give the same to the fine-tuning datamodule.
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
            "terratorch_specmae.hub.register_pretrained_cfg."
        )
    return PRETRAINED_CFGS[variant]


def _hub_download(repo_id: str, filename: str | None, revision: str | None, **kwargs) -> str:
    """Local path of a Hub file, or of a ``save_pretrained`` folder (``config.json`` + weights) when ``filename`` is None."""
    where = f"{filename or WEIGHTS_NAME} of Hub repo {repo_id!r} at revision {revision or 'main'}"
    try:
        if filename:
            return hf_hub_download(repo_id, filename, revision=revision, **kwargs)
        weights = hf_hub_download(repo_id, WEIGHTS_NAME, revision=revision, **kwargs)
        try:
            hf_hub_download(repo_id, CONFIG_NAME, revision=revision, **kwargs)
        except EntryNotFoundError:
            pass  # weights without a config: the safetensors metadata may still name the bands
        return str(Path(weights).parent)
    except LocalEntryNotFoundError as err:
        raise ValueError(
            f"Could not get {where}: not in the local cache ({err}). Connect, or unset HF_HUB_OFFLINE once to download it."
        ) from err
    except (HfHubHTTPError, OSError) as err:
        raise ValueError(f"Could not get {where}: {err}") from err


def resolve_weights(source, **download_kwargs) -> str:
    """A local path (file or folder) for a weights reference.

    ``source``: a local path; ``hf://org/repo[@revision][/path/in/repo]`` (no path: the repo is
    a ``save_pretrained`` folder); or a mapping ``{repo_id, filename, revision}``.
    """
    if isinstance(source, Mapping):
        unknown = set(source) - {"repo_id", "filename", "revision"}
        if "repo_id" not in source or unknown:
            raise ValueError(f"A Hub weights reference needs repo_id (and optionally filename, revision); got keys {sorted(source)}.")
        return _hub_download(source["repo_id"], source.get("filename"), source.get("revision"), **download_kwargs)
    source = os.fspath(source)
    if source.startswith("hf://"):
        try:
            uri = parse_hf_uri(source)
        except HfUriError as err:
            raise ValueError(f"Bad Hub reference {source!r}: {err.msg} Expected hf://org/repo[@revision][/file].") from err
        if uri.type != "model":
            raise ValueError(f"Hub reference {source!r} points to a {uri.type}; weights live in model repos.")
        return _hub_download(uri.id, uri.path_in_repo or None, uri.revision, **download_kwargs)
    return source


def read_pretrained(source) -> WeightsFile:
    """The tensors and training layout of a weights reference (see :func:`resolve_weights`); a
    :class:`~terratorch_specmae.checkpoints.WeightsFile` is returned as it is."""
    return source if isinstance(source, WeightsFile) else read_weights(resolve_weights(source))


def weights_for_variant(variant: str) -> WeightsFile:
    """The registered pretrained weights of ``variant``, with the registry's bands and size where the file lacks them."""
    cfg = pretrained_cfg(variant)
    weights = read_pretrained(cfg.reference())
    weights.metadata = {**cfg.to_dict(), **weights.metadata}
    layout = weights.layout
    weights.layout = SourceLayout(
        bands=layout.bands if layout.bands is not None else (tuple(cfg.bands) if cfg.bands else None),
        img_size=layout.img_size if layout.img_size is not None else (tuple(cfg.img_size) if cfg.img_size else None),
    )
    return weights


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
| normalisation | {normalisation} |
| pretraining data | {pretraining_data} |
| masking | {masking} |
| weights from | {source} |

## Bands

| band | centre wavelength (nm) | mean | std |
|---|---|---|---|
{band_rows}

Inputs are the bands above, in this order, standardised per band with the mean and std given
(the units of the pretraining data). Other band sets load too: the weights are fitted by band
name and wavelength (see terratorch-specmae's README, "Weights").

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


class HubMixin(
    PyTorchModelHubMixin,
    library_name="terratorch-specmae",
    tags=["earth-observation", "remote-sensing", "masked-autoencoder", "terratorch"],
    repo_url="https://github.com/terratorch-specmae/terratorch-specmae",
):
    """``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for our models (see the module docstring).

    A model carries ``pretrained_cfg`` (a :class:`PretrainedCfg` or None): what its weights were
    trained on. It is written into ``config.json``, the safetensors metadata and the model card;
    set its ``mean``/``std``/``pretraining_data`` before publishing (``specmae-weights export``
    fills them from a pretraining run).
    """

    pretrained_cfg: PretrainedCfg | None = None

    # ---- what a model class provides
    def hub_config(self) -> dict:
        """The constructor arguments that rebuild this model (JSON-able); the bands by name, never a count."""
        config = dict(self._hub_mixin_config or {})
        for key in (*LOAD_OPTIONS, *RUN_OPTIONS, "in_chans"):
            config.pop(key, None)
        if "bands" in self._hub_mixin_init_parameters:
            config["bands"] = list(self.bands)
        return config

    def hub_card(self) -> PretrainedCfg:
        """This model's :class:`PretrainedCfg` completed with its own bands, image size and masking."""
        cfg = PretrainedCfg.from_dict(self.pretrained_cfg.to_dict() if self.pretrained_cfg else {})
        cfg.bands = list(self.bands)
        size = getattr(self, "img_size", None) or (self.window_size, self.window_size)
        cfg.img_size = list(size)
        if getattr(self, "masking_name", None):
            cfg.masking, cfg.mask_ratio = self.masking_name, self.masking.mask_ratio
        cfg.hf_hub_id = cfg.filename = cfg.revision = None  # where it is now is the folder itself
        return cfg

    # ---- huggingface_hub hooks
    def _save_pretrained(self, save_directory: Path) -> None:
        """``config.json`` and ``model.safetensors`` into ``save_directory``, each written atomically."""
        from safetensors.torch import save_file

        card = self.hub_card()
        config = {**self.hub_config(), METADATA_KEY: card.to_dict()}
        atomic_write_text(save_directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(save_directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(card.to_dict()), "format": "pt"})

    def save_pretrained(
        self,
        save_directory,
        *,
        config: dict | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict | None = None,
        **push_to_hub_kwargs,
    ):
        """huggingface_hub's ``save_pretrained``, written so that an interruption loses nothing.

        Writes :data:`SAVED_FILES` (``config.json``, ``model.safetensors``, the ``README.md`` model
        card) and nothing else; other files in the folder are left alone. Each file is written under
        a temporary name and renamed into place, so an earlier file stays whole until its
        replacement is complete; a folder that does not exist yet is filled under a temporary
        sibling name and renamed at the end, so it never appears half-written. The card's usage
        lines name the folder as ``<parent>/<folder>`` (``push_to_hub`` saves into
        ``<tmp>/<org>/<repo>``, so there it is the repo id). ``config`` (huggingface_hub's
        argument) is only passed on to ``push_to_hub``: ``config.json`` is always ours.
        """
        path = Path(save_directory)
        card_kwargs = {"repo_id": f"{path.parent.name}/{path.name}", **(model_card_kwargs or {})}
        with atomic_folder(path) as folder:
            self._save_pretrained(folder)
            atomic_write_text(folder / MODEL_CARD_NAME, str(self.generate_model_card(**card_kwargs)))
        if push_to_hub:
            kwargs = {**push_to_hub_kwargs, **({"config": config} if config is not None else {})}
            return self.push_to_hub(repo_id=repo_id or path.name, model_card_kwargs=model_card_kwargs, **kwargs)
        return None

    def generate_model_card(self, *args, repo_id: str = "<org>/<repo>", **kwargs) -> ModelCard:
        return ModelCard(self._model_card(self.hub_card(), repo_id))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """huggingface_hub's ``from_pretrained``, with a message naming the reference when it fails:
        a local folder that does not exist (huggingface_hub would report a bad repo id), a weights
        file instead of a folder, a corrupt ``config.json``, a repo that is not found."""
        source = os.fspath(pretrained_model_name_or_path)
        path = Path(source).expanduser()
        expected = f"expected a save_pretrained folder ({CONFIG_NAME} + {WEIGHTS_NAME}) or a Hub repo id 'org/name'"
        if path.is_file():
            raise ValueError(f"{source!r} is a file; {expected}. Load a single weights file with ckpt_path instead.")
        if path.is_dir():
            if (path / CONFIG_NAME).is_file():
                read_config(path / CONFIG_NAME)  # a corrupt config.json: an error naming it
            return super().from_pretrained(source, *args, **kwargs)
        try:
            return super().from_pretrained(source, *args, **kwargs)
        except (HFValidationError, HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
            local = f"no local folder {str(path)!r}"
            if path.parent.is_dir() and str(path.parent) not in ("", "."):
                siblings = sorted(p.name for p in path.parent.iterdir() if p.is_dir())[:10]
                local += f" (folders in {str(path.parent)!r}: {siblings})"
            raise ValueError(f"Could not load {source!r}: {local}, and as a Hub repo: {type(err).__name__}: "
                             f"{str(err).splitlines()[0]}; {expected}.") from err  # fmt: skip

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir,
        force_download: bool,
        local_files_only: bool,
        token,
        config: dict | None = None,
        map_location: str = "cpu",
        strict: bool = False,  # noqa: ARG003 (ours is always strict about keys; mismatches are errors)
        **model_kwargs,
    ):
        options = {k: model_kwargs.pop(k) for k in LOAD_OPTIONS[1:] if k in model_kwargs}
        model_kwargs.pop("ckpt_path", None)
        model = cls(**cls._kwargs_from_config(config or {}, model_kwargs))
        if os.path.isdir(model_id):
            weights = read_weights(model_id)
        else:
            weights = read_weights(
                _hub_download(
                    model_id, None, revision, cache_dir=cache_dir, force_download=force_download,
                    local_files_only=local_files_only, token=token,
                )
            )  # fmt: skip
        load_weights(model, weights, **options)
        model.pretrained_cfg = PretrainedCfg.from_dict(weights.metadata)
        return model.to(map_location).eval()

    @classmethod
    def _kwargs_from_config(cls, config: dict, passed: dict) -> dict:
        """Constructor arguments: the saved config, overridden by what the caller passed."""
        known = {k for k in cls._hub_mixin_init_parameters if k != "self"}
        return {**{k: v for k, v in config.items() if k in known}, **passed}

    def _model_card(self, card: PretrainedCfg, repo_id: str) -> str:
        bands, mean, std = card.bands or [], card.mean, card.std
        wavelengths = card.wavelengths_nm or [None] * len(bands)
        fmt = lambda v: "–" if v is None else f"{v:g}"  # noqa: E731
        rows = "\n".join(
            f"| {b} | {fmt(w)} | {fmt(mean[i] if mean else None)} | {fmt(std[i] if std else None)} |"
            for i, (b, w) in enumerate(zip(bands, wavelengths))
        )
        front = {
            "library_name": "terratorch-specmae",
            "license": card.license or "other",
            "tags": sorted(set(self._hub_mixin_info.model_card_data.tags or []) | {self.family_tag()}),
        }
        front_matter = yaml.safe_dump(front, sort_keys=False).strip()
        size = card.img_size or []
        return MODEL_CARD.format(
            front_matter=front_matter,
            title=f"{self.family_tag().upper()} {type(self).__name__}",
            summary=self.card_summary(),
            class_name=type(self).__name__,
            module=type(self).__module__.removeprefix("terratorch_specmae."),
            architecture=self.card_architecture(),
            img_size="×".join(str(s) for s in size) + " px" if size else "not recorded",
            n_bands=len(bands),
            band_list=", ".join(f"`{b}`" for b in bands),
            normalisation="per-band mean/std below" if mean and std else "not recorded (set pretrained_cfg.mean/std)",
            pretraining_data=card.pretraining_data or "not recorded",
            masking=f"{card.masking}, ratio {card.mask_ratio:g}" if card.masking and card.mask_ratio is not None else (card.masking or "not recorded"),
            source=card.source or "pretrained with terratorch-specmae",
            band_rows=rows,
            variant=self.card_variant(),
            repo_id=repo_id,
            bands_yaml=json.dumps(bands),
        )

    # ---- card text, overridden per model family
    def family_tag(self) -> str:
        return "specmae"

    def card_summary(self) -> str:
        return (self.__doc__ or "").strip().split("\n")[0]

    def card_architecture(self) -> str:
        return ""

    def card_variant(self) -> str:
        return "<variant>"


__all__ = [
    "PRETRAINED_CFGS",
    "SAVED_FILES",
    "HubMixin",
    "PretrainedCfg",
    "pretrained_cfg",
    "read_pretrained",
    "register_pretrained_cfg",
    "resolve_weights",
    "weights_for_variant",
]
