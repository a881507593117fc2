"""``specmae export``, ``specmae convert-spectralgpt`` and ``specmae export-onnx``: publishable weight folders
from pretraining checkpoints and from SpectralGPT, and deployment exports (ONNX, ``torch.export``) of fine-tuned
segmentation / change-detection models.

    specmae export <pretraining .ckpt> <out folder> [--encoder-only] [--overwrite] [--push-to-hub org/repo]
    specmae convert-spectralgpt <SpectralGPT+.pth> <out folder> [--mae] [--overwrite] [--push-to-hub org/repo]
    specmae export-onnx <fine-tuning .ckpt> <out .onnx | .pt2> [--format onnx|torch-export] [--overwrite]

``export`` and ``convert-spectralgpt`` write a ``save_pretrained`` folder (``config.json``,
``model.safetensors``, ``README.md`` model card) that ``backbone_ckpt_path: <folder>`` or, once
uploaded, ``hf://org/repo`` loads.
``export`` reads the normalisation statistics and data folders of the run from the
``config.yaml`` LightningCLI wrote beside the checkpoint's ``checkpoints/`` folder (or ``--config``).

The output folder must be new or empty: a folder holding anything is refused (before the
checkpoint is read) unless ``--overwrite`` is given, and even then only those three files are
replaced; other files in it are never touched. Every file is written under a temporary name and
renamed into place, and a new folder appears only once complete, so an interrupted run leaves
the earlier files whole.

``export-onnx`` writes one file (see :mod:`terratorch_specmae.deployment`), refused if it exists
unless ``--overwrite``, checked against PyTorch before it is renamed into place.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from terratorch.registry import FULL_MODEL_REGISTRY

from terratorch_specmae.cli.command import Command, UsageError
from terratorch_specmae.deployment import DEFAULT_ATOL, DEFAULT_RTOL, FORMATS, check_output_file, export_for_deployment
from terratorch_specmae.models.run_switches import RUN_OPTIONS
from terratorch_specmae.models.ssmae import SSMAE
from terratorch_specmae.runs import data_description, per_band, read_run_config
from terratorch_specmae.weights import (
    LOAD_OPTIONS,
    SAVED_FILES,
    PretrainedCfg,
    convert_spectralgpt,
    load_torch_file,
    load_weights,
    weights_from_torch_object,
)
from terratorch_specmae.weights.card import card_cfg
from terratorch_specmae.weights.catalogue import entry_of_run

OVERWRITE_HELP = (
    "write into a non-empty folder, replacing config.json, model.safetensors and README.md (other files stay)"
)


def check_output_folder(out: str | Path, overwrite: bool = False) -> Path:
    """``out`` as a folder that a ``save_pretrained`` may write into: one that does not exist yet, or an
    empty folder, or with ``overwrite`` any folder (only :data:`~terratorch_specmae.weights.SAVED_FILES` are
    replaced there). Raises ``NotADirectoryError`` for a file, ``FileExistsError`` for a non-empty folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"The output path {str(out)!r} is a file; expected a folder for {', '.join(SAVED_FILES)} "
            "(a new one, an empty one, or one to --overwrite)."
        )
    if out.is_dir() and not overwrite:
        names = sorted(p.name for p in out.iterdir())
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise FileExistsError(
                f"The output folder {str(out)!r} is not empty: it holds {shown}. Choose a new or empty folder, or pass "
                f"--overwrite (overwrite=True in Python) to replace {', '.join(SAVED_FILES)} there; "
                "other files in it are left as they are."
            )
    return out


def export_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    encoder_only: bool = False,
    config: str | Path | None = None,
    pretraining_data: str | None = None,
    license: str | None = None,
    push_to_hub: str | None = None,
    overwrite: bool = False,
    datasets: list[str] | None = None,
):
    """Write the model of a pretraining checkpoint of ours (``SpectralMAETask``) as a ``save_pretrained`` folder.

    ``out`` must be new or empty unless ``overwrite`` (see :func:`check_output_folder`); that is
    checked before the checkpoint is read.
    """
    check_output_folder(out, overwrite)
    ckpt = Path(ckpt)
    raw = load_torch_file(ckpt)
    hparams = raw.get("hyper_parameters") or {}
    args = dict(hparams.get("model_args") or {})
    if "model" not in args or hparams.get("model_factory", "FullModelFactory") != "FullModelFactory":
        raise ValueError(
            f"{str(ckpt)!r} is not a pretraining checkpoint of ours: expected the hyper-parameters of SpectralMAETask "
            f"(model_args.model and the FullModelFactory), got model_args keys {sorted(args)}."
        )
    name = args.pop("model")
    started_from = entry_of_run({"model": name, **args})  # catalogue weights the run continued from, if any
    for key in (*LOAD_OPTIONS, *RUN_OPTIONS):  # the weights come from this checkpoint; the run's switches are not kept
        args.pop(key, None)
    args["pretrained"] = False  # the architecture only: nothing is downloaded
    # a run that began at catalogue weights has their architecture: rebuild it under their tagged name
    model = FULL_MODEL_REGISTRY.build(started_from.tag if started_from else name, **args)
    weights = weights_from_torch_object(ckpt, raw)  # the file is read once
    load_weights(model, weights)
    if encoder_only:
        encoder = model.to_encoder() if isinstance(model, SSMAE) else model.encoder
        masking_source, model = model, encoder
    else:
        masking_source = model
    run = read_run_config(ckpt, config)
    data = run.get("data") or {}
    data_args = data.get("init_args", {})
    card = card_cfg(masking_source)
    model.pretrained_cfg = PretrainedCfg(
        mean=per_band(data_args.get("means")),
        std=per_band(data_args.get("stds")),
        pretraining_data=pretraining_data or data_description(data),
        masking=card.masking,
        mask_ratio=card.mask_ratio,
        source=f"exported from {ckpt.name} (epoch {raw.get('epoch', '?')}, step {raw.get('global_step', '?')})"
        + (f", continued from {started_from.tag}: {started_from.source}" if started_from else ""),
        license=license or (started_from.license if started_from else None),
        terms=started_from.terms if started_from else None,
        citation=started_from.citation if started_from else None,
        datasets=list(datasets) if datasets else None,
    )
    bands = list(model.bands)
    for what in ("mean", "std"):
        values = getattr(model.pretrained_cfg, what)
        if values is not None and len(values) != len(bands):
            raise ValueError(f"The run's {what}s have {len(values)} values for the model's {len(bands)} bands {bands}.")
    model.save_pretrained(out, overwrite=overwrite)  # not told to overwrite: created, never replacing
    if push_to_hub:
        model.push_to_hub(push_to_hub)
    return model


def export_spectralgpt(
    pth: str | Path,
    out: str | Path,
    mae: bool = False,
    num_heads: int | None = None,
    push_to_hub: str | None = None,
    overwrite: bool = False,
):
    """Write a SpectralGPT(+) checkpoint, converted (:func:`~terratorch_specmae.weights.converters.convert_spectralgpt`),
    as a ``save_pretrained`` folder. ``out`` must be new or empty unless ``overwrite``, checked before the file is read."""
    check_output_folder(out, overwrite)
    model = convert_spectralgpt(pth, mae=mae, num_heads=num_heads)
    model.save_pretrained(out, overwrite=overwrite)  # not told to overwrite: created, never replacing
    if push_to_hub:
        model.push_to_hub(push_to_hub)
    return model


# ---- the commands


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="the pretraining run's Lightning .ckpt (SpectralMAETask)")
    parser.add_argument("out", type=Path, help="the save_pretrained folder to write (new or empty)")
    parser.add_argument("--encoder-only", action="store_true", help="the encoder (a backbone) instead of the whole MAE")
    parser.add_argument("--config", type=Path, help="the run's config.yaml (default: beside checkpoints/)")
    parser.add_argument("--pretraining-data", help="what the model was pretrained on, for the model card")
    parser.add_argument(
        "--license", help="licence of the weights, for the model card (a Hub licence id, e.g. apache-2.0)"
    )
    parser.add_argument("--dataset", action="append", dest="datasets", metavar="HUB_DATASET_ID",
                        help="a Hub dataset the model was pretrained on, for the card's metadata (repeatable)")  # fmt: skip
    parser.add_argument("--push-to-hub", metavar="ORG/REPO", help="also upload the folder to this Hub repo")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _export(args: argparse.Namespace) -> None:
    model = export_checkpoint(
        args.checkpoint, args.out, args.encoder_only, args.config, args.pretraining_data, args.license,
        args.push_to_hub, overwrite=args.overwrite, datasets=args.datasets,
    )  # fmt: skip
    print(f"{type(model).__name__} ({len(model.bands)} bands) written to {args.out}")


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="the SpectralGPT or SpectralGPT+ .pth file")
    parser.add_argument("out", type=Path, help="the save_pretrained folder to write (new or empty)")
    parser.add_argument("--mae", action="store_true", help="the whole MAE (decoder included), not only the encoder")
    parser.add_argument("--num-heads", type=int, help="encoder heads (default: ViT's for the width, 12 for 768)")
    parser.add_argument("--push-to-hub", metavar="ORG/REPO", help="also upload the folder to this Hub repo")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _convert(args: argparse.Namespace) -> None:
    model = export_spectralgpt(args.checkpoint, args.out, args.mae, args.num_heads, args.push_to_hub, args.overwrite)
    print(f"{type(model).__name__} ({len(model.bands)} bands) written to {args.out}")


def _export_onnx_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="the fine-tuning run's Lightning .ckpt")
    parser.add_argument("out", type=Path, help="the file to write: .onnx (or .pt2 with --format torch-export)")
    parser.add_argument(
        "--format", choices=list(FORMATS), help="onnx or torch-export (torch.export.save); default: by the ending of OUT"
    )
    parser.add_argument("--config", type=Path, help="the run's config.yaml (default: beside checkpoints/)")
    parser.add_argument(
        "--image-size", type=int, nargs="+", metavar="PX", help="fixed H [W] of the export (default: the backbone's img_size)"
    )
    parser.add_argument("--timesteps", type=int, help="dates per sample of a change-detection model (default: its own)")
    parser.add_argument(
        "--atol", type=float, default=DEFAULT_ATOL, help=f"absolute tolerance of the check ({DEFAULT_ATOL:g})"
    )
    parser.add_argument(
        "--rtol", type=float, default=DEFAULT_RTOL, help=f"relative tolerance of the check ({DEFAULT_RTOL:g})"
    )
    parser.add_argument("--opset", type=int, help="ONNX opset (default: torch.onnx's)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _export_onnx(args: argparse.Namespace) -> None:
    size = args.image_size
    if size is not None and len(size) not in (1, 2):
        raise UsageError(f"--image-size takes H or H W, got {len(size)} numbers: {size}")
    out, fmt = check_output_file(args.out, args.format, args.overwrite)  # before the checkpoint is read
    report = export_for_deployment(
        args.checkpoint, out, fmt, config=args.config,
        image_size=None if size is None else (size[0] if len(size) == 1 else tuple(size)),
        timesteps=args.timesteps, overwrite=args.overwrite, atol=args.atol, rtol=args.rtol,
        **({"opset": args.opset} if args.opset is not None else {}),
    )  # fmt: skip
    print(report.summary())


EXPORT = Command(
    "export",
    "pretraining .ckpt → save_pretrained folder (weights + model card)",
    "Write the model of a pretraining checkpoint (SpectralMAETask) as a save_pretrained folder that\n"
    "backbone_ckpt_path: <folder> (or hf://org/repo once uploaded) loads. The normalisation statistics and data\n"
    "come from the run's config.yaml beside checkpoints/ (or --config). OUT must be new or empty unless\n"
    "--overwrite; that is checked before the checkpoint is read.\n\n"
    "  specmae export runs/pretrain/checkpoints/last.ckpt weights/ --encoder-only --license apache-2.0",
    _export_arguments,
    _export,
)
CONVERT_SPECTRALGPT = Command(
    "convert-spectralgpt",
    "SpectralGPT(+) .pth → save_pretrained folder",
    "Convert a SpectralGPT or SpectralGPT+ checkpoint one to one into an S2MAE save_pretrained folder\n"
    "(the encoder, or with --mae the whole MAE). OUT must be new or empty unless --overwrite.\n\n"
    "  specmae convert-spectralgpt SpectralGPT+.pth spectralgpt_plus/",
    _convert_arguments,
    _convert,
)
EXPORT_ONNX = Command(
    "export-onnx",
    "fine-tuned .ckpt → checked .onnx / .pt2 file for deployment",
    "Export a fine-tuned segmentation or change-detection run (TerraTorch's EncoderDecoderFactory around an\n"
    "s2mae_/sigmae_ backbone) as ONNX (.onnx) or a torch.export program (.pt2): batch axis dynamic, image size\n"
    "fixed. The file is checked against PyTorch (|exported - PyTorch| <= atol + rtol * |PyTorch|) before it is\n"
    "renamed into place; an existing OUT is refused unless --overwrite. Pretraining checkpoints go to\n"
    "`specmae export` instead.\n\n"
    "  specmae export-onnx runs/seg/checkpoints/last.ckpt model.onnx\n"
    "  specmae export-onnx runs/seg/checkpoints/last.ckpt model.pt2 --format torch-export",
    _export_onnx_arguments,
    _export_onnx,
)
COMMANDS = (EXPORT, CONVERT_SPECTRALGPT, EXPORT_ONNX)
