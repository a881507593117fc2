"""Getting the catalogue's weights onto this machine: downloaded, checked, converted once, cached.

* **Hub entries** (``hf_hub_id``): ``huggingface_hub``'s ``hf_hub_download`` — its cache
  (``HF_HOME`` / ``HF_HUB_CACHE``), the pinned ``revision``, ``HF_ENDPOINT``, ``HF_TOKEN`` and
  offline mode (``HF_HUB_OFFLINE=1``: the cache only). The file is checked against the SHA-256 the
  Hub published for it (its LFS ETag, which names the cached blob) until it passes once (recorded
  under ``<cache>/verified/``); a cache kept without symlinks has no blob names to check against.
* **Zenodo entries** (``zenodo_record``): the record's metadata
  (``{endpoint}/api/records/<id>``, ``SPECMAE_ZENODO_ENDPOINT``, default https://zenodo.org)
  gives each file's size and MD5; the file is downloaded into ``<cache>/zenodo/<record>/`` under
  ``<name>.part``, resumed with an HTTP range request where an earlier download stopped, checked
  against that size and MD5 (and the entry's own ``md5`` pin, if any) and only then renamed to
  its name. One process at a time downloads a file (a lock file beside it).
* **Converted once**: a file whose keys are not ours (SpectralGPT's) is converted the first time
  and kept as ``<cache>/converted/…/<name>.safetensors`` (no pickle is read again); later loads
  read that file.

``<cache>`` is ``$SPECMAE_CACHE``, else ``$HF_HOME/specmae`` (``~/.cache/huggingface/specmae``):
beside the Hub's cache, so one ``HF_HOME`` holds both. Offline mode (``HF_HUB_OFFLINE=1``) covers
Zenodo too: nothing is fetched, and a file not in the cache is an error naming it. Nothing in the
cache is ever deleted, except this module's own ``.part`` file of a download whose checksum
failed (said in the error).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import requests
from filelock import FileLock
from huggingface_hub import constants, try_to_load_from_cache

from terratorch_specmae.atomic import atomic_path, atomic_write_text
from terratorch_specmae.weights.adaptation import SourceLayout
from terratorch_specmae.weights.catalogue import PretrainedCfg, pretrained_cfg
from terratorch_specmae.weights.files import (
    METADATA_KEY,
    WEIGHTS_NAME,
    WeightsFile,
    load_torch_file,
    read_weights,
    weights_from_torch_object,
)
from terratorch_specmae.weights.hub import hub_download
from terratorch_specmae.weights.layouts import LAYOUTS

CACHE_ENV = "SPECMAE_CACHE"
ZENODO_ENDPOINT_ENV = "SPECMAE_ZENODO_ENDPOINT"
ZENODO_ENDPOINT = "https://zenodo.org"
CHUNK = 1 << 20
TIMEOUT = (30, 300)  # connect, read (seconds)


class DownloadError(ValueError):
    """A catalogue file could not be fetched or failed its check; the message names the file and what to do."""


def cache_dir() -> Path:
    """Where Zenodo downloads and converted files are kept: ``$SPECMAE_CACHE``, else ``$HF_HOME/specmae``."""
    return Path(os.environ.get(CACHE_ENV) or Path(constants.HF_HOME) / "specmae").expanduser()


def offline() -> bool:
    """Offline mode: ``huggingface_hub``'s ``HF_HUB_OFFLINE`` (as it read it, or as the environment says now)."""
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def zenodo_endpoint() -> str:
    return (os.environ.get(ZENODO_ENDPOINT_ENV) or ZENODO_ENDPOINT).rstrip("/")


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


# ---- Zenodo


def zenodo_file_info(record: str, filename: str, session: requests.Session | None = None) -> dict:
    """``{"size", "md5", "url"}`` of ``filename`` in Zenodo record ``record``, from the record's metadata."""
    url = f"{zenodo_endpoint()}/api/records/{record}"
    session = session or requests.Session()
    try:
        response = session.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        meta = response.json()
    except (requests.RequestException, ValueError) as err:
        raise DownloadError(
            f"Could not read the metadata of Zenodo record {record} ({url}) to download {filename}: {err}. Connect to "
            f"the network (or set {ZENODO_ENDPOINT_ENV} to a mirror), or work offline (HF_HUB_OFFLINE=1) from a cache "
            f"that holds the file ({cache_dir() / 'zenodo' / record / filename})."
        ) from err
    files = meta.get("files") or []
    if isinstance(files, dict):  # the newer API's {"entries": [...]} or {"entries": {name: {...}}}
        files = files.get("entries") or []
        files = list(files.values()) if isinstance(files, dict) else files
    entry = next((f for f in files if isinstance(f, dict) and f.get("key", f.get("filename")) == filename), None)
    if entry is None:
        names = [f.get("key", f.get("filename")) for f in files if isinstance(f, dict)]
        raise DownloadError(f"Zenodo record {record} has no file {filename!r} (its files: {names}).")
    algorithm, _, checksum = str(entry.get("checksum", "")).partition(":")
    if algorithm != "md5" or len(checksum) != 32:
        raise DownloadError(
            f"Zenodo record {record} publishes no MD5 for {filename} (checksum {entry.get('checksum')!r}); refusing to "
            "download a file that cannot be checked."
        )
    if not isinstance(entry.get("size"), int) or entry["size"] <= 0:
        raise DownloadError(f"Zenodo record {record} publishes no size for {filename} (got {entry.get('size')!r}).")
    links = entry.get("links") or {}
    download = links.get("content") or links.get("self") or f"{zenodo_endpoint()}/records/{record}/files/{filename}?download=1"
    return {"size": entry["size"], "md5": checksum.lower(), "url": download}


def _fetch_into(part: Path, url: str, size: int, session: requests.Session, name: str) -> None:
    """Download ``url`` into ``part``, resuming from the bytes already there (an HTTP range request)."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        have = 0  # longer than the file: not a prefix of it; start again (it is our own partial file)
    if have == size:
        return
    headers = {"Accept-Encoding": "identity"}  # byte offsets count the file's own bytes
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with session.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            if response.status_code not in (200, 206):
                raise DownloadError(f"Downloading {name} from {url} failed: HTTP {response.status_code}.")
            # append only to a 206 that starts where the part ends; a 200 (range ignored) is the whole file
            resumes = response.status_code == 206 and have and _range_start(response) == have
            if response.status_code == 206 and not resumes:
                raise DownloadError(
                    f"Downloading {name}: the server answered a request for bytes {have}- with "
                    f"{response.headers.get('Content-Range')!r}. The part is kept at {part}; run again."
                )
            mode = "ab" if resumes else "wb"
            with open(part, mode) as f:
                f.writelines(response.iter_content(CHUNK))
    except requests.RequestException as err:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"The download of {name} stopped after {got:,} of {size:,} bytes ({err}). The part is kept at {part}; "
            "run again to resume it."
        ) from err


def _range_start(response) -> int | None:
    """The first byte a 206 response carries (``Content-Range: bytes <start>-<end>/<size>``)."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def zenodo_file(record: str, filename: str, md5: str | None = None) -> Path:
    """The local path of ``filename`` of Zenodo record ``record``: from the cache, or downloaded (resumable)
    and checked against the record's size and MD5 (and ``md5``, when the catalogue pins one)."""
    folder = cache_dir() / "zenodo" / str(record)
    target = folder / filename
    if target.is_file():
        return target  # only ever renamed here after its check passed
    name = f"{filename} (Zenodo record {record})"
    if offline():
        raise DownloadError(
            f"{name} is not in the cache ({target}) and offline mode is on (HF_HUB_OFFLINE). Run once with the network "
            f"(unset HF_HUB_OFFLINE) to download it, or copy {cache_dir()} from a machine that has it."
        )
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file():  # another process finished it while this one waited
            return target
        session = requests.Session()
        info = zenodo_file_info(record, filename, session)
        if md5 and md5.lower() != info["md5"]:
            raise DownloadError(
                f"Zenodo record {record} now publishes MD5 {info['md5']} for {filename}, but the catalogue pins {md5}: "
                "the file changed since the catalogue entry was written. Nothing was downloaded."
            )
        part = folder / (filename + ".part")
        _fetch_into(part, info["url"], info["size"], session, name)
        got = part.stat().st_size
        if got < info["size"]:
            raise DownloadError(
                f"The download of {name} ended after {got:,} of {info['size']:,} bytes. The part is kept at {part}; "
                "run again to resume it."
            )
        digest = _digest(part, "md5")
        if got != info["size"] or digest != info["md5"]:
            part.unlink()  # our own partial file: resuming it could never pass
            raise DownloadError(
                f"The download of {name} is corrupt: expected {info['size']:,} bytes with MD5 {info['md5']} (published "
                f"by Zenodo), got {got:,} bytes with MD5 {digest}. The corrupt download was removed; run again to "
                "download it afresh."
            )
        os.replace(part, target)
    return target


# ---- the Hub


def _check_hub_blob(path: str, what: str) -> None:
    """A Hub file against the SHA-256 the Hub published for it, which names its blob in the cache (LFS files'
    ETag). A file that passed is recorded under ``<cache>/verified/`` and not hashed again; one that fails is
    refused every time, and left where it is (it is in the user's Hub cache)."""
    blob = Path(os.path.realpath(path))
    expected = blob.name
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        return  # a small git file (named by its git hash), or a cache without symlinks: no published hash to hand
    marker = cache_dir() / "verified" / expected
    if marker.is_file():
        return
    digest = _digest(blob, "sha256")
    if digest != expected:
        raise DownloadError(
            f"The download of {what} is corrupt: the Hub published SHA-256 {expected}, the file has {digest}. It was "
            f"not used and is left where it is ({blob}); delete it, or download again with force_download, then retry."
        )
    atomic_write_text(marker, f"{what}\n")


def hub_file(cfg: PretrainedCfg) -> str:
    """The local path of a Hub entry's file: ``hf_hub_download`` (cache, revision, offline mode), checked
    against its published SHA-256 (once; see :func:`_check_hub_blob`)."""
    if not cfg.filename:
        return hub_download(cfg.hf_hub_id, None, cfg.revision)
    path = hub_download(cfg.hf_hub_id, cfg.filename, cfg.revision)
    _check_hub_blob(path, f"{cfg.filename} of Hub repo {cfg.hf_hub_id} at revision {cfg.revision or 'main'}")
    return path


# ---- converted once


def converted_path(cfg: PretrainedCfg) -> Path:
    """Where the converted safetensors of a Zenodo entry's file are kept."""
    return cache_dir() / "converted" / f"zenodo-{cfg.zenodo_record}" / (Path(cfg.filename).stem + ".safetensors")


def _converter(name: str):
    row = next((row for row in LAYOUTS if row.name == name and row.convert is not None), None)
    if row is None:
        known = [row.name for row in LAYOUTS if row.convert is not None]
        raise ValueError(f"Unknown converter {name!r}; expected one of {known}.")
    return row


CONVERTER_VERSION = "1"  # raise when a converter changes what it writes: cached conversions are then redone


def _source_stamp(original: Path, row) -> dict[str, str]:
    """What a converted file was made from: the original's size and modification time, the converter and its version."""
    stat = original.stat()
    return {"converted_from": original.name, "source_size": str(stat.st_size), "source_mtime_ns": str(stat.st_mtime_ns),
            "converter": row.name, "converter_version": CONVERTER_VERSION}  # fmt: skip


def _is_current(target: Path, stamp: dict[str, str]) -> bool:
    from safetensors import safe_open

    if not target.is_file():
        return False
    try:
        with safe_open(str(target), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # noqa: BLE001 (an unreadable file of ours: convert again)
        return False
    return all(meta.get(k) == v for k, v in stamp.items())


def convert_once(cfg: PretrainedCfg, original: Path) -> Path:
    """``original`` (a foreign checkpoint) converted to our key names and kept as safetensors, once — again only
    if the original file or the converter changed since (the file records what it was made from)."""
    from safetensors.torch import save_file

    target = converted_path(cfg)
    row = _converter(cfg.converter)
    stamp = _source_stamp(original, row)
    if _is_current(target, stamp):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if _is_current(target, stamp):
            return target
        state = weights_from_torch_object(original, load_torch_file(original)).state
        if not row.matches(state):
            raise DownloadError(
                f"{original} does not hold {row.description} (first keys: {list(state)[:5]}); the catalogue entry "
                f"{cfg.tag} expects it. Check the file."
            )
        converted = {k: v.detach().contiguous().clone() for k, v in row.convert(state).items()}
        meta = {METADATA_KEY: json.dumps(cfg.to_dict()), "format": "pt", **stamp}
        with atomic_path(target) as tmp:  # replaces an outdated conversion of ours, whole or not at all
            save_file(converted, str(tmp), metadata=meta)
    return target


# ---- a catalogue entry → its weights


def fetch_pretrained(cfg: PretrainedCfg) -> WeightsFile:
    """The tensors of a catalogue entry (downloaded, checked and converted as needed), with the entry's bands,
    image size and card fields as the file's metadata."""
    if cfg.zenodo_record:
        original = zenodo_file(cfg.zenodo_record, cfg.filename, cfg.md5)
        path = convert_once(cfg, original) if cfg.converter else original
        weights = read_weights(path)
    elif cfg.hf_hub_id:
        weights = read_weights(hub_file(cfg))
        row = _converter(cfg.converter) if cfg.converter else None
        if row is not None and not row.matches(weights.state):
            raise DownloadError(
                f"{weights.path} ({cfg.location}) does not hold {row.description} (first keys: "
                f"{list(weights.state)[:5]}), which the catalogue entry {cfg.tag} expects."
            )
    else:
        raise ValueError(f"The catalogue entry {cfg.tag} names no Hub repo (hf_hub_id) and no Zenodo record.")
    layout = weights.layout
    for what, recorded, listed in (("bands", layout.bands, cfg.bands), ("image size", layout.img_size, cfg.img_size)):
        if recorded is not None and listed is not None and tuple(recorded) != tuple(listed):
            raise DownloadError(
                f"{weights.path} records {what} {list(recorded)}, but the catalogue entry {cfg.tag} says {list(listed)}: "
                "fix the entry (register_pretrained_cfg) or the file."
            )
    weights.metadata = {**weights.metadata, **cfg.to_dict()}
    weights.layout = SourceLayout(
        bands=layout.bands if layout.bands is not None else (tuple(cfg.bands) if cfg.bands else None),
        img_size=layout.img_size if layout.img_size is not None else (tuple(cfg.img_size) if cfg.img_size else None),
    )
    return weights


def weights_for_variant(variant: str, tag: str | None = None) -> WeightsFile:
    """The registered pretrained weights ``variant.tag`` (no tag: the variant's default)."""
    return fetch_pretrained(pretrained_cfg(variant, tag))


def cached_file(cfg: PretrainedCfg) -> Path | None:
    """The local file of a catalogue entry if the cache holds it (nothing is fetched; None otherwise): the
    converted file of a Zenodo entry with a converter (else its download), or the Hub cache's file."""
    if cfg.zenodo_record:
        original = cache_dir() / "zenodo" / str(cfg.zenodo_record) / cfg.filename
        if cfg.converter and converted_path(cfg).is_file():
            return converted_path(cfg)
        return original if original.is_file() else None
    if cfg.hf_hub_id:
        path = try_to_load_from_cache(cfg.hf_hub_id, cfg.filename or WEIGHTS_NAME, revision=cfg.revision)
        if isinstance(path, str):
            return Path(path) if cfg.filename else Path(path).parent
    return None
