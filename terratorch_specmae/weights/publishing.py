"""``save_pretrained`` / ``from_pretrained`` for our models: huggingface_hub's folder convention, written safely.

A weights folder is ``config.json`` (the constructor arguments that rebuild the model, and a
``specmae`` block: its :class:`~terratorch_specmae.weights.catalogue.PretrainedCfg`) +
``model.safetensors`` (the same block in its metadata) + a model card ``README.md``. Loading goes
through :func:`~terratorch_specmae.weights.loading.load_weights`, so a published model loads into
another band set or image size, and key mismatches are reported.

The models' :class:`~terratorch_specmae.models.hub_mixin.HubMixin` calls the functions of this
module (it is registered there on import): models never import the weights layer.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from huggingface_hub import ModelCard
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

from terratorch_specmae.atomic import atomic_folder, atomic_path, atomic_write_text
from terratorch_specmae.models.hub_mixin import HubMixin, register_publisher
from terratorch_specmae.models.run_switches import RUN_OPTIONS, apply_run_options
from terratorch_specmae.weights.card import card_cfg, render_model_card
from terratorch_specmae.weights.catalogue import PretrainedCfg
from terratorch_specmae.weights.files import CONFIG_NAME, METADATA_KEY, WEIGHTS_NAME, read_config, read_weights
from terratorch_specmae.weights.hub import hub_download
from terratorch_specmae.weights.loading import LOAD_OPTIONS, load_weights

MODEL_CARD_NAME = "README.md"
SAVED_FILES = (CONFIG_NAME, WEIGHTS_NAME, MODEL_CARD_NAME)  # all that save_pretrained writes into a folder


def write_weights_folder(model, save_directory: Path, exclusive: bool = False) -> None:
    """``config.json`` and ``model.safetensors`` into ``save_directory``, each written atomically (``exclusive``:
    created, never replacing a file of that name)."""
    from safetensors.torch import save_file

    card = card_cfg(model)
    config = {**model.hub_config(), METADATA_KEY: card.to_dict()}
    atomic_write_text(Path(save_directory) / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True), exclusive=exclusive)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(Path(save_directory) / WEIGHTS_NAME, exclusive) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(card.to_dict()), "format": "pt"})


def model_card(model, *args, repo_id: str = "<org>/<repo>", **kwargs) -> ModelCard:
    return ModelCard(render_model_card(model, card_cfg(model), repo_id))


def save_pretrained(
    model,
    save_directory,
    *,
    config: dict | None = None,
    repo_id: str | None = None,
    push_to_hub: bool = False,
    model_card_kwargs: dict | None = None,
    overwrite: bool = True,
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

    ``overwrite=False``: the folder must be new or empty, and each file is created exclusively, so
    two runs saving into one path at once cannot mix or replace each other's files: the one that
    comes second fails with :class:`~terratorch_specmae.atomic.OutputExistsError` and writes nothing.
    """
    path = Path(save_directory)
    card_kwargs = {"repo_id": f"{path.parent.name}/{path.name}", **(model_card_kwargs or {})}
    card = str(model_card(model, **card_kwargs))  # first: a card that cannot be written (a bad licence) writes nothing
    with atomic_folder(path, exclusive=not overwrite) as folder:
        write_weights_folder(model, folder, exclusive=not overwrite)
        atomic_write_text(folder / MODEL_CARD_NAME, card, exclusive=not overwrite)
    if push_to_hub:
        kwargs = {**push_to_hub_kwargs, **({"config": config} if config is not None else {})}
        return model.push_to_hub(repo_id=repo_id or path.name, model_card_kwargs=model_card_kwargs, **kwargs)
    return None


def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
    """huggingface_hub's ``from_pretrained``, with a message naming the reference when it fails:
    a local folder that does not exist (huggingface_hub would report a bad repo id), a weights
    file instead of a folder, a corrupt ``config.json``, a repo that is not found."""
    source = os.fspath(pretrained_model_name_or_path)
    path = Path(source).expanduser()
    expected = f"expected a save_pretrained folder ({CONFIG_NAME} + {WEIGHTS_NAME}) or a Hub repo id 'org/name'"
    hub_from_pretrained = super(HubMixin, cls).from_pretrained  # huggingface_hub's: reads config.json, calls ours
    if path.is_file():
        raise ValueError(f"{source!r} is a file; {expected}. Load a single weights file with ckpt_path instead.")
    if path.is_dir():
        if (path / CONFIG_NAME).is_file():
            read_config(path / CONFIG_NAME)  # a corrupt config.json: an error naming it
        return hub_from_pretrained(source, *args, **kwargs)
    try:
        return hub_from_pretrained(source, *args, **kwargs)
    except (HFValidationError, HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        local = f"no local folder {str(path)!r}"
        if path.parent.is_dir() and str(path.parent) not in ("", "."):
            siblings = sorted(p.name for p in path.parent.iterdir() if p.is_dir())[:10]
            local += f" (folders in {str(path.parent)!r}: {siblings})"
        raise ValueError(f"Could not load {source!r}: {local}, and as a Hub repo: {type(err).__name__}: "
                         f"{str(err).splitlines()[0]}; {expected}.") from err  # fmt: skip


def load_pretrained(
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
    strict: bool = False,  # noqa: ARG001 (ours is always strict about keys; mismatches are errors)
    **model_kwargs,
):
    """huggingface_hub's ``_from_pretrained`` hook: build ``cls`` from the saved config (overridden by
    ``model_kwargs``), load the folder's weights, then apply run switches given in ``model_kwargs``."""
    load_options = {k: model_kwargs.pop(k) for k in LOAD_OPTIONS[1:] if k in model_kwargs}
    run_options = {k: model_kwargs.pop(k) for k in RUN_OPTIONS if k in model_kwargs}
    model_kwargs.pop("ckpt_path", None)  # the weights are the folder's
    model = cls(**cls._kwargs_from_config(config or {}, model_kwargs))
    if os.path.isdir(model_id):
        weights = read_weights(model_id)
    else:
        weights = read_weights(
            hub_download(
                model_id, None, revision, cache_dir=cache_dir, force_download=force_download,
                local_files_only=local_files_only, token=token,
            )
        )  # fmt: skip
    model.load_report = load_weights(model, weights, **load_options)
    model.pretrained_cfg = PretrainedCfg.from_dict(weights.metadata)
    apply_run_options(model, **run_options)
    return model.to(map_location).eval()


register_publisher(sys.modules[__name__])
