"""Weights references → local files, through ``huggingface_hub``.

:func:`resolve_weights` turns a weights reference — a local path, ``hf://org/repo[@rev][/file]``
or ``{repo_id, filename, revision}`` — into a local path through ``huggingface_hub`` (its cache,
``revision``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``); :func:`read_pretrained` reads
what it names. (The catalogue's entries are fetched by :mod:`terratorch_specmae.weights.downloads`.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HfUriError, LocalEntryNotFoundError
from huggingface_hub.utils import parse_hf_uri

from terratorch_specmae.weights.files import CONFIG_NAME, WEIGHTS_NAME, WeightsFile, read_weights


def hub_download(repo_id: str, filename: str | None, revision: str | None, **kwargs) -> str:
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
        if constants.HF_HUB_OFFLINE or kwargs.get("local_files_only"):
            todo = "Offline mode is on (HF_HUB_OFFLINE): unset it once to download the file into the cache"
        else:
            todo = f"The Hub ({constants.ENDPOINT}) could not be reached: connect, or set HF_ENDPOINT to a mirror"
        raise ValueError(f"Could not get {where}: not in the local cache ({constants.HF_HUB_CACHE}). {todo}.") from err
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
        return hub_download(source["repo_id"], source.get("filename"), source.get("revision"), **download_kwargs)
    source = os.fspath(source)
    if source.startswith("hf://"):
        try:
            uri = parse_hf_uri(source)
        except HfUriError as err:
            raise ValueError(f"Bad Hub reference {source!r}: {err.msg} Expected hf://org/repo[@revision][/file].") from err
        if uri.type != "model":
            raise ValueError(f"Hub reference {source!r} points to a {uri.type}; weights live in model repos.")
        return hub_download(uri.id, uri.path_in_repo or None, uri.revision, **download_kwargs)
    return source


def read_pretrained(source) -> WeightsFile:
    """The tensors and training layout of a weights reference (see :func:`resolve_weights`); a
    :class:`~terratorch_specmae.weights.files.WeightsFile` is returned as it is."""
    return source if isinstance(source, WeightsFile) else read_weights(resolve_weights(source))

