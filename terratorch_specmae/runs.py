"""A training run's files: the ``config.yaml`` LightningCLI writes beside a checkpoint's ``checkpoints/``
folder, and what its datamodule config says (per-band statistics, where the data came from).

A run made by ``terratorch fit`` looks like ``<log dir>/config.yaml`` and
``<log dir>/checkpoints/<name>.ckpt``; :func:`run_config_path` finds the first from the second.
Used by ``specmae export`` (pretraining runs) and ``export-onnx`` (fine-tuning runs).
"""

from __future__ import annotations

from pathlib import Path

import yaml


def run_config_path(ckpt: str | Path, config: str | Path | None = None) -> Path:
    """``config`` if given, else the ``config.yaml`` of the run that wrote ``ckpt`` (``<log dir>/config.yaml``).

    A checkpoint reached through a symbolic link (``best.ckpt -> runs/…/checkpoints/epoch=9.ckpt``) is
    the run's own file: its run's config is found from where the file really is, not from beside the link."""
    return Path(config) if config else Path(ckpt).resolve().parent.parent / "config.yaml"


def read_run_config(ckpt: str | Path, config: str | Path | None = None, required: bool = False) -> dict:
    """The LightningCLI config of the run that wrote ``ckpt`` as a dict.

    A ``config`` given by name must exist; the default one (beside ``checkpoints/``) may be absent
    (``{}``) unless ``required``. A file that is not a YAML mapping is a ``ValueError`` naming it.
    """
    path = run_config_path(ckpt, config)
    if not path.is_file():
        if config is not None or required:
            given = (
                "given as --config"
                if config is not None
                else f"beside the checkpoint's folder ({Path(ckpt).parent.name}/)"
            )
            raise FileNotFoundError(
                f"The run's config {str(path)!r} ({given}) does not exist; expected the config.yaml that "
                "terratorch fit (LightningCLI) writes into the log folder. Pass --config <run>/config.yaml "
                "(config=… in Python)."
            )
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(
            f"Could not read the run's config {str(path)!r}: expected YAML, got an error ({err})."
        ) from err
    if not isinstance(loaded, dict):
        raise ValueError(
            f"The run's config {str(path)!r} holds a YAML {type(loaded).__name__}; expected a mapping "
            "(trainer:, data:, model: …) as LightningCLI writes it."
        )
    return loaded


def per_band(value):
    """Per-band statistics as a datamodule config gives them: a list, or a dict of one list per modality."""
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        return [x for lst in lists for x in lst] if lists else None
    return value if isinstance(value, list) else None


def data_description(data: dict) -> str | None:
    """``"<datamodule class> over <train root>"`` from a run's ``data:`` block."""
    args = data.get("init_args", {})
    root = args.get("train_data_root") or args.get("train_root") or args.get("root")
    if isinstance(root, dict):
        root = ", ".join(str(v) for v in root.values())
    name = str(data.get("class_path", "")).rsplit(".", 1)[-1]
    return f"{name} over {root}" if root else (name or None)


__all__ = ["data_description", "per_band", "read_run_config", "run_config_path"]
