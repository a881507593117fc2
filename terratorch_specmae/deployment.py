"""Deployment export: a fine-tuned TerraTorch segmentation or change-detection model with one of our
backbones → an ONNX file (``.onnx``) or a ``torch.export`` program (``.pt2``), checked against PyTorch.

    specmae export-onnx <run>/checkpoints/last.ckpt model.onnx
    specmae export-onnx <run>/checkpoints/last.ckpt model.pt2 --format torch-export

or in Python :func:`export_onnx` / :func:`export_torch_program`. The checkpoint is a Lightning
``.ckpt`` of a ``SemanticSegmentationTask`` (or a subclass, such as ours) built by TerraTorch's
``EncoderDecoderFactory`` around an ``s2mae_*`` / ``sigmae_*`` backbone — plain segmentation, or
change detection through TerraTorch's temporal wrapper. It is rebuilt from the checkpoint's
hyper-parameters; the run's ``config.yaml`` (beside ``checkpoints/``, or ``config=``) gives the
normalisation statistics and, for checkpoints without ``_class_path``, the task class.

What is exported: ``image`` → ``logits``, the model's per-class scores (argmax over axis 1 is the
class map) in fp32, in eval mode, with timm's plain attention. The **batch axis is dynamic**; the
**image size is fixed** (the backbone's ``img_size`` unless ``image_size`` is given), because
TerraTorch's ``ReshapeTokensToImage`` neck finds the token grid with Python arithmetic on the token
count and our position table is resampled only when the grid differs from the training grid (a
Python branch): a traced graph holds for one image size. For change detection the number of dates
is fixed too. The input is the *normalised* image, ``(x − mean) / std`` per band, as the
datamodule fed it in training; the statistics are in the file's metadata (:data:`METADATA_KEYS`),
not in the graph.

Verification is built in: after writing the file under a temporary name, the exported model is run
(onnxruntime on the CPU, or the loaded ``.pt2``) on random normalised inputs at batch sizes
:data:`VERIFY_BATCH_SIZES` (the export traced batch :data:`EXAMPLE_BATCH`) and compared with the
eager PyTorch model in true fp32: every logit must satisfy ``|exported − PyTorch| <= atol + rtol ·
|PyTorch|`` (default ``atol = rtol = 1e-4``). Only then is the file renamed into place; a failure
raises :class:`ExportMismatchError` and leaves nothing at the output path.

Not in the exported graph: the input check of ``nan_policy="error"`` (NaN / inf / nodata raise in
PyTorch, pass through to the logits in the export: clean nodata before the model), masking
(fine-tuned backbones do not mask), ``torch.compile`` and our bf16 CPU attention kernel (run
switches, left off when the model is rebuilt; they change speed, not results), activation
checkpointing, and the task's tiled inference (tile the scene outside, at the exported size).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import json
import logging
import math
import zipfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path

import torch
from torch import nn

from terratorch_specmae.atomic import atomic_path
from terratorch_specmae.backbones import BACKBONES
from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.run_switches import RUN_OPTIONS
from terratorch_specmae.runs import per_band, read_run_config, run_config_path
from terratorch_specmae.weights import LOAD_OPTIONS, PretrainedCfg, load_torch_file, split_tag
from terratorch_specmae.weights.catalogue import entry_of_run

FORMATS = {"onnx": ".onnx", "torch-export": ".pt2"}  # format → the file name ending it is written to
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4
EXAMPLE_BATCH = 2  # the batch size the export traces with
VERIFY_BATCH_SIZES = (1, 3)  # batch sizes the exported model is checked at (other than the traced one)
INPUT_NAME, OUTPUT_NAME = "image", "logits"
BATCH_AXIS = "batch"  # name of the dynamic axis in the ONNX file
PT2_METADATA_FILE = "metadata.json"  # the extra file of a .pt2 that holds the metadata
MAX_METADATA_BYTES = 1 << 20  # an export writes a few kB
FAMILIES = ("s2mae", "sigmae")  # backbone families a deployment export takes (SS-MAE is pixel classification)
METADATA_KEYS = (
    "task", "backbone", "bands", "means", "stds", "normalisation", "num_classes", "class_names",
    "input_name", "input_layout", "input_shape", "output_name", "output_layout",
    "terratorch_specmae_version", "torch_version", "source_checkpoint",
)  # fmt: skip


class ExportMismatchError(RuntimeError):
    """The exported model's outputs differ from the PyTorch model's beyond the tolerance."""


class DeploymentModel(nn.Module):
    """A TerraTorch pixel-wise model as a plain ``image → logits`` module (what is exported)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image).output


@dataclass
class FineTunedModel:
    """A fine-tuned model rebuilt from its checkpoint, with what a deployment needs to know about it."""

    model: DeploymentModel
    task: str  # "segmentation", "change_detection" (temporal, differenced) or "temporal_segmentation"
    backbone: str
    bands: list[str]
    means: list[float]
    stds: list[float]
    num_classes: int
    class_names: list[str] | None
    input_shape: tuple[int, ...]  # without the batch axis: (C, H, W) or (C, T, H, W)
    source: str
    pretrained: PretrainedCfg | None = None  # the catalogue weights the fine-tuning started from, if any

    @property
    def input_layout(self) -> str:
        return "NCHW" if len(self.input_shape) == 3 else "NCTHW"

    def example(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random normalised input (standard normal, as ``(x − mean) / std`` is) of ``batch_size``."""
        return torch.randn(batch_size, *self.input_shape, generator=generator)

    def metadata(self) -> dict[str, str]:
        """The metadata written into the file (ONNX ``metadata_props``; a ``.pt2``'s ``metadata.json``):
        strings, lists and numbers as JSON."""
        meta = {
            "task": self.task,
            "backbone": self.backbone,
            "bands": json.dumps(self.bands),
            "means": json.dumps(self.means),
            "stds": json.dumps(self.stds),
            "normalisation": "(x - mean) / std per band, before the model (not in the graph)",
            "num_classes": str(self.num_classes),
            "input_name": INPUT_NAME,
            "input_layout": self.input_layout,
            "input_shape": json.dumps([BATCH_AXIS, *self.input_shape]),
            "output_name": OUTPUT_NAME,
            "output_layout": "NKHW (K class scores, unnormalised; argmax over axis 1 is the class map)",
            "terratorch_specmae_version": package_version(),
            "torch_version": torch.__version__,
            "source_checkpoint": self.source,
        }
        if self.class_names:
            meta["class_names"] = json.dumps(self.class_names)
        if self.pretrained is not None:  # where the weights began, and on what terms
            meta["pretrained_weights"] = str(self.pretrained.tag)
            for key in ("source", "scaling", "license", "terms", "citation"):
                if getattr(self.pretrained, key):
                    meta[f"pretrained_{key}"] = str(getattr(self.pretrained, key))
        return meta


@dataclass
class ExportReport:
    """What an export wrote and how closely the written model matches PyTorch."""

    path: Path
    format: str
    runtime: str  # what ran the exported model in the check
    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    atol: float
    rtol: float
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        meta = self.metadata
        return (
            f"{self.format} model ({meta['task']}, {meta['backbone']}, input {meta['input_name']} "
            f"{meta['input_shape']} {meta['input_layout']}) written to {self.path}; {self.runtime} vs PyTorch: "
            f"max abs difference {self.max_abs_diff:.3g} at batch sizes {', '.join(map(str, self.batch_sizes))} "
            f"(tolerance {self.atol:g} + {self.rtol:g}·|PyTorch|)"
        )


def package_version() -> str:
    try:
        return package_metadata.version("terratorch-specmae")
    except package_metadata.PackageNotFoundError:
        return "unknown"


@contextmanager
def true_fp32():
    """Float32 matmuls in full precision (importing TerraTorch sets "medium": bf16 on AMX CPUs)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


@contextmanager
def quiet_exporter_logs(names: Sequence[str] = ("onnxscript", "onnx_ir", "torch.onnx")):
    """Keep the ONNX exporter's INFO lines (one per optimisation step) off the console: importing TerraTorch
    sends the root logger's INFO to stderr. Warnings and errors still show."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# ---- reading a fine-tuning run


def our_backbones() -> list[str]:
    """The registered backbone names a deployment export takes (``s2mae_vit_*``, ``sigmae_vit_*``)."""
    return [f"{family}_{name}" for family in FAMILIES for name in BACKBONES[family]]


def _task_class(ckpt: Path, hparams: dict, run: dict, config_path: Path):
    from terratorch.tasks import SemanticSegmentationTask

    class_path = hparams.get("_class_path") or (run.get("model") or {}).get("class_path")
    if not class_path:
        raise ValueError(
            f"Cannot tell which task {str(ckpt)!r} was trained with: expected '_class_path' in its hyper-parameters "
            f"(LightningCLI writes it) or model.class_path in the run's config {str(config_path)!r}; found neither."
        )
    module, _, name = str(class_path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"The task class {class_path!r} of {str(ckpt)!r} cannot be imported: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, SemanticSegmentationTask)):
        raise ValueError(
            f"{str(ckpt)!r} is a {class_path} run; a deployment export takes segmentation and change-detection runs: "
            "expected terratorch.tasks.SemanticSegmentationTask or a subclass (such as terratorch_specmae.tasks.SegmentationTask)."
        )
    return cls


def _deployment_model_args(model_args: dict) -> dict:
    """``model_args`` to rebuild the architecture only: weights come from the checkpoint, not from
    ``backbone_ckpt_path`` or the registered weights, and run switches (compile, the CPU attention
    kernel, activation checkpointing) stay off."""
    drop = {f"backbone_{name}" for name in (*LOAD_OPTIONS, *RUN_OPTIONS)}
    args = {k: v for k, v in model_args.items() if k not in drop}
    started_from = entry_of_run(model_args)
    if started_from is not None:  # began at catalogue weights: their architecture, under their tagged name
        args["backbone"] = started_from.tag
    args["backbone_pretrained"] = False
    return args


def _init_kwargs(cls, hparams: dict) -> dict:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in hparams.items() if not k.startswith("_")}
    return {k: v for k, v in hparams.items() if k in params and k != "self"}


def _normalisation(run: dict, config_path: Path) -> tuple[list[float], list[float]]:
    """Per-band means and stds of the run's datamodule: from its config (``means`` / ``stds``), else
    from the datamodule built from that config (TorchGeo's datamodules keep them as ``mean`` / ``std``)."""
    data = run.get("data") or {}
    args = data.get("init_args") or {}
    means, stds = per_band(args.get("means")), per_band(args.get("stds"))
    if means is not None and stds is not None:
        return [float(v) for v in means], [float(v) for v in stds]
    class_path = data.get("class_path")
    if class_path:
        module, _, name = str(class_path).rpartition(".")
        try:
            datamodule = getattr(importlib.import_module(module), name)(**args)
        except Exception as err:
            raise ValueError(
                f"The run's config {str(config_path)!r} gives no data.init_args.means / stds, and its datamodule "
                f"{class_path} could not be built to read them ({type(err).__name__}: {err})."
            ) from err
        for holder in (getattr(datamodule, "aug", None), datamodule):
            for mean_name, std_name in (("means", "stds"), ("mean", "std")):
                m, s = getattr(holder, mean_name, None), getattr(holder, std_name, None)
                if m is not None and s is not None and not isinstance(m, dict):
                    m = m.flatten().tolist() if isinstance(m, torch.Tensor) else list(m)
                    s = s.flatten().tolist() if isinstance(s, torch.Tensor) else list(s)
                    return [float(v) for v in m], [float(v) for v in s]
    raise ValueError(
        f"The run's config {str(config_path)!r} says nothing of the input normalisation: expected per-band "
        f"data.init_args.means and stds (or a datamodule holding mean / std), got data keys {sorted(args)}."
    )


def _image_size(image_size, encoder: SpectralViT) -> tuple[int, int]:
    if image_size is None:
        return tuple(encoder.img_size)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
        raise ValueError(f"image_size must be an int or (height, width) of ints, got {image_size!r}.")
    if min(size) < encoder.patch_size:
        raise ValueError(f"image_size {size} is smaller than one {encoder.patch_size}×{encoder.patch_size} patch.")
    if not encoder.dynamic_img_size and size != tuple(encoder.img_size):
        raise ValueError(
            f"The backbone takes {encoder.img_size[0]}×{encoder.img_size[1]} images only (dynamic_img_size: false); "
            f"got image_size {size}."
        )
    return size


def _check_no_padding(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    """Refuse an image size that TerraTorch's model pads before the backbone: ``pad_images`` pads one sample at
    a time (a Python loop over the batch), which would fix the batch size of the traced graph."""
    from terratorch.models.utils import pad_images

    patch_size, padding = getattr(model, "patch_size", None), getattr(model, "padding", None)
    if not patch_size or padding is None:
        return
    padded = tuple(pad_images(torch.zeros(1, *input_shape), patch_size, padding).shape[-2:])
    if padded != tuple(input_shape[-2:]):
        (h, w), (ph, pw) = input_shape[-2:], padded
        raise ValueError(
            f"TerraTorch's model pads {h}×{w} images to {ph}×{pw} (padding {padding!r} up to a multiple of twice the "
            f"patch size {patch_size}) one sample at a time, which fixes the batch size of an exported graph; "
            f"expected an image size it does not pad, e.g. {ph}×{pw} (--image-size {ph} {pw})."
        )


def load_finetuned(
    ckpt: str | Path,
    config: str | Path | None = None,
    image_size: int | Sequence[int] | None = None,
    timesteps: int | None = None,
) -> FineTunedModel:
    """Rebuild the fine-tuned model of a TerraTorch segmentation / change-detection run of ours for export.

    ``ckpt``: the run's Lightning checkpoint; ``config``: its ``config.yaml`` (default: beside the
    checkpoint's ``checkpoints/`` folder; required). ``image_size``: the fixed export size (default
    the backbone's ``img_size``); ``timesteps``: dates per sample of a temporal model (default its
    ``backbone_temporal_n_timestamps``, else 2).
    """
    ckpt = Path(ckpt)
    raw = load_torch_file(ckpt)
    if not isinstance(raw, dict) or "state_dict" not in raw or "hyper_parameters" not in raw:
        got = sorted(raw)[:8] if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(
            f"{str(ckpt)!r} is not a Lightning checkpoint of a fine-tuning run: expected 'state_dict' and "
            f"'hyper_parameters' (what terratorch fit saves), got {got}."
        )
    hparams = dict(raw["hyper_parameters"] or {})
    model_args = dict(hparams.get("model_args") or {})
    if "model" in model_args and "backbone" not in model_args:
        raise ValueError(
            f"{str(ckpt)!r} is a pretraining checkpoint (model_args.model = {model_args['model']!r}); a deployment export "
            "takes a fine-tuning run (EncoderDecoderFactory around an s2mae_/sigmae_ backbone). Export pretrained weights "
            "with `specmae export`."
        )
    factory = hparams.get("model_factory")
    backbone = model_args.get("backbone")
    if factory != "EncoderDecoderFactory" or split_tag(str(backbone))[0] not in our_backbones():
        raise ValueError(
            f"{str(ckpt)!r} is not a fine-tuning run of ours: expected model_factory EncoderDecoderFactory with a backbone "
            f"among {', '.join(our_backbones())}; got model_factory {factory!r}, backbone {backbone!r}."
        )
    config_path = run_config_path(ckpt, config)
    run = read_run_config(ckpt, config, required=True)
    cls = _task_class(ckpt, hparams, run, config_path)
    task = cls(**{**_init_kwargs(cls, hparams), "model_args": _deployment_model_args(model_args)})
    state = {k.removeprefix("model."): v for k, v in raw["state_dict"].items() if k.startswith("model.")}
    if not state:
        raise ValueError(f"{str(ckpt)!r} holds no model weights: expected 'model.*' entries in its state_dict.")
    try:
        task.model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"The weights in {str(ckpt)!r} do not fit the model its hyper-parameters build: {err}"
        ) from err
    model = DeploymentModel(task.model).eval()
    encoder = next((m for m in model.modules() if isinstance(m, SpectralViT)), None)
    if encoder is None:  # the registry built something else under our name
        raise ValueError(f"The model of {str(ckpt)!r} holds no SpectralViT backbone (backbone {backbone!r}).")
    bands = list(encoder.bands)
    means, stds = _normalisation(run, config_path)
    for what, values in (("means", means), ("stds", stds)):
        if len(values) != len(bands):
            raise ValueError(
                f"The run's {what} have {len(values)} values for the model's {len(bands)} bands {bands} "
                f"(config {str(config_path)!r})."
            )
    height, width = _image_size(image_size, encoder)
    wrapper = task.model.encoder
    temporal = type(wrapper).__name__ == "TemporalWrapper"
    if temporal:
        dates = timesteps or model_args.get("backbone_temporal_n_timestamps")
        dates = int(dates or (sum(wrapper.subset_lengths) if wrapper.subset_lengths else 2))
        input_shape = (len(bands), dates, height, width)
        kind = "change_detection" if wrapper.pooling == "diff" else "temporal_segmentation"
    else:
        if timesteps not in (None, 1):
            raise ValueError(f"timesteps={timesteps} given for a single-date model (backbone_use_temporal is off).")
        input_shape, kind = (len(bands), height, width), "segmentation"
    _check_no_padding(task.model, input_shape)
    class_names = hparams.get("class_names") or ((run.get("model") or {}).get("init_args") or {}).get("class_names")
    num_classes = int(model_args.get("num_classes") or len(class_names or []))
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"The run names {len(class_names)} classes {list(class_names)} for a {num_classes}-class model."
        )
    return FineTunedModel(
        model=model, task=kind, backbone=backbone, bands=bands, means=means, stds=stds, num_classes=num_classes,
        class_names=[str(c) for c in class_names] if class_names else None, input_shape=input_shape,
        source=f"{ckpt.name} (epoch {raw.get('epoch', '?')}, step {raw.get('global_step', '?')})",
        pretrained=entry_of_run(model_args),
    )  # fmt: skip


# ---- export and verification


def check_output_file(out: str | Path, format: str | None = None, overwrite: bool = False) -> tuple[Path, str]:
    """``out`` and its format, checked before anything is read: a known format (given, or by the file
    name's ending), the ending that format writes, and no existing file unless ``overwrite``."""
    out = Path(out)
    if format is None:
        format = next((name for name, suffix in FORMATS.items() if out.suffix == suffix), None)
        if format is None:
            raise ValueError(
                f"Cannot tell the export format from {str(out)!r}: expected a file name ending in "
                f"{' or '.join(FORMATS.values())}, or a format among {', '.join(FORMATS)}."
            )
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; expected one of: {', '.join(FORMATS)}.")
    if out.suffix != FORMATS[format]:
        raise ValueError(f"A {format} export is written to a {FORMATS[format]} file; got {str(out)!r}.")
    if out.is_dir():
        raise IsADirectoryError(f"The output path {str(out)!r} is a folder; expected a {FORMATS[format]} file name.")
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"The output file {str(out)!r} exists; pass --overwrite (overwrite=True in Python) to replace it."
        )
    return out, format


def _check_tolerance(atol: float, rtol: float) -> None:
    for name, value in (("atol", atol), ("rtol", rtol)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def trace(finetuned: FineTunedModel) -> torch.export.ExportedProgram:
    """``torch.export`` of the model, eval mode, batch axis dynamic (traced at :data:`EXAMPLE_BATCH`)."""
    example = finetuned.example(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    batch = torch.export.Dim(BATCH_AXIS, min=1)
    try:
        with torch.no_grad():
            return torch.export.export(finetuned.model, (example,), dynamic_shapes={INPUT_NAME: {0: batch}})
    except Exception as err:
        raise RuntimeError(
            f"torch.export could not trace the {finetuned.task} model ({finetuned.backbone}, input "
            f"{[BATCH_AXIS, *finetuned.input_shape]}): {type(err).__name__}: {err}"
        ) from err


def verify(
    finetuned: FineTunedModel,
    run_exported: Callable[[torch.Tensor], torch.Tensor],
    runtime: str,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    batch_sizes: Sequence[int] = VERIFY_BATCH_SIZES,
) -> float:
    """Compare ``run_exported(x)`` with the eager model on random normalised inputs of each batch size;
    return the largest absolute difference, or raise :class:`ExportMismatchError` where
    ``|exported − PyTorch| > atol + rtol · |PyTorch|`` (or the shapes differ, or NaNs appear)."""
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for batch_size in batch_sizes:
        x = finetuned.example(batch_size, generator)
        with true_fp32(), torch.no_grad():
            expected = finetuned.model(x)
        got = torch.as_tensor(run_exported(x))
        if got.shape != expected.shape:
            raise ExportMismatchError(
                f"{runtime} gave logits of shape {tuple(got.shape)} for an input of {tuple(x.shape)}; "
                f"PyTorch gives {tuple(expected.shape)}."
            )
        diff = (got.double() - expected.double()).abs()
        allowed = atol + rtol * expected.double().abs()
        bad = ~(diff <= allowed)  # NaN differences count as bad
        worst = max(worst, float(diff.nan_to_num(float("inf")).max()))
        if bad.any():
            i = int(torch.argmax((diff - allowed).nan_to_num(float("inf")).flatten()))
            raise ExportMismatchError(
                f"{runtime} differs from PyTorch beyond the tolerance at batch size {batch_size}: "
                f"{int(bad.sum())} of {bad.numel()} logits, max abs difference {worst:.3g} "
                f"(e.g. {float(got.flatten()[i]):.6g} vs {float(expected.flatten()[i]):.6g}); expected "
                f"|exported − PyTorch| <= {atol:g} + {rtol:g}·|PyTorch|. Nothing was written to the output path; "
                "give a larger atol / rtol (--atol, --rtol) if this difference is acceptable."
            )
    return worst


def _onnx_runner(path: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    return run, f"onnxruntime {onnxruntime.__version__} (CPU)"


def _name_batch_axis(graph, symbol: str) -> None:
    """Call the batch axis ``batch`` wherever the exporter named it by its symbol (``s40``)."""
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = BATCH_AXIS


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"The ONNX export needs {', '.join(missing)}: pip install 'terratorch-specmae[export]' "
            "(onnx, onnxruntime and onnxscript, which torch.onnx's exporter uses)."
        )


def export_onnx(
    ckpt: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    image_size: int | Sequence[int] | None = None,
    timesteps: int | None = None,
    overwrite: bool = False,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    opset: int | None = None,
) -> ExportReport:
    """Export a fine-tuned segmentation / change-detection run of ours to an ONNX file, and check it.

    ``out`` ends in ``.onnx`` and must not exist unless ``overwrite`` (checked before the checkpoint is
    read). The file has one input ``image`` (``[batch, C, H, W]``, or ``[batch, C, T, H, W]`` for
    change detection; normalised; batch dynamic, the rest fixed) and one output ``logits``
    (``[batch, classes, H, W]``), and carries :data:`METADATA_KEYS` as ``metadata_props``. It is
    written under a temporary name, run with onnxruntime on the CPU and compared with PyTorch (see
    :func:`verify`), then renamed into place. ``opset``: the ONNX opset (default: torch's exporter's).
    Returns an :class:`ExportReport`.
    """
    out, _ = check_output_file(out, "onnx", overwrite)
    _check_tolerance(atol, rtol)
    _require("onnx", "onnxruntime", "onnxscript")
    import onnx

    finetuned = load_finetuned(ckpt, config, image_size, timesteps)
    program = trace(finetuned)
    example = finetuned.example(EXAMPLE_BATCH)
    try:
        with quiet_exporter_logs():
            onnx_program = torch.onnx.export(
                program, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, verbose=False,
            )  # fmt: skip
    except Exception as err:
        raise RuntimeError(
            f"torch.onnx could not convert the traced {finetuned.task} model ({finetuned.backbone}): "
            f"{type(err).__name__}: {err}"
        ) from err
    proto = onnx_program.model_proto
    symbol = proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    if symbol:
        _name_batch_axis(proto.graph, symbol)
    metadata = finetuned.metadata()
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = (
        f"{finetuned.task} with a {finetuned.backbone} backbone, exported by terratorch-specmae from {finetuned.source}"
    )
    with atomic_path(out, exclusive=not overwrite) as tmp:  # not told to overwrite: created, never replacing
        onnx.save_model(proto, tmp)
        run, runtime = _onnx_runner(tmp)
        worst = verify(finetuned, run, runtime, atol, rtol)
    return ExportReport(out, "onnx", runtime, worst, VERIFY_BATCH_SIZES, atol, rtol, metadata)


def export_torch_program(
    ckpt: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    image_size: int | Sequence[int] | None = None,
    timesteps: int | None = None,
    overwrite: bool = False,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> ExportReport:
    """Export a fine-tuned segmentation / change-detection run of ours as a ``torch.export`` program
    (``torch.export.save``, a ``.pt2`` file), and check it.

    As :func:`export_onnx`, but the file is an ``ExportedProgram`` (``torch.export.load(path).module()``
    runs it: ``image`` in, logits out) and the metadata is its extra file ``metadata.json``
    (:func:`read_metadata`). The check loads the written file and compares it with the eager model.
    """
    out, _ = check_output_file(out, "torch-export", overwrite)
    _check_tolerance(atol, rtol)
    finetuned = load_finetuned(ckpt, config, image_size, timesteps)
    program = trace(finetuned)
    metadata = finetuned.metadata()
    runtime = f"torch.export.load (torch {torch.__version__})"
    buffer = io.BytesIO()  # through a buffer: torch.export.save wants a file name ending in .pt2, not a temporary's
    torch.export.save(program, buffer, extra_files={PT2_METADATA_FILE: json.dumps(metadata)})
    with atomic_path(out, exclusive=not overwrite) as tmp:  # not told to overwrite: created, never replacing
        tmp.write_bytes(buffer.getvalue())
        loaded = torch.export.load(io.BytesIO(tmp.read_bytes())).module()  # what the file holds

        def run(x: torch.Tensor) -> torch.Tensor:
            with true_fp32(), torch.no_grad():
                return loaded(x)

        worst = verify(finetuned, run, runtime, atol, rtol)
    return ExportReport(out, "torch-export", runtime, worst, VERIFY_BATCH_SIZES, atol, rtol, metadata)


def export_for_deployment(ckpt: str | Path, out: str | Path, format: str | None = None, **kwargs) -> ExportReport:
    """:func:`export_onnx` or :func:`export_torch_program` by ``format`` (``"onnx"``, ``"torch-export"``;
    default: by ``out``'s ending, ``.onnx`` or ``.pt2``)."""
    out, format = check_output_file(out, format, kwargs.get("overwrite", False))
    if format == "torch-export":
        kwargs.pop("opset", None)
        return export_torch_program(ckpt, out, **kwargs)
    return export_onnx(ckpt, out, **kwargs)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata an export wrote (:data:`METADATA_KEYS`), from a ``.onnx`` or ``.pt2`` file."""
    path = Path(path)
    if path.suffix == FORMATS["onnx"]:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}
    if path.suffix == FORMATS["torch-export"]:
        return _pt2_metadata(path)
    raise ValueError(f"Expected a .onnx or .pt2 file written by an export, got {str(path)!r}.")


def _pt2_metadata(path: Path) -> dict[str, str]:
    """The ``metadata.json`` extra file of a ``.pt2``, read from its zip archive as JSON. Nothing else of the file
    is read: ``torch.export.load`` would also unpickle the archive's sample inputs, and a ``.pt2`` from someone
    else could hold a pickle that runs code."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 2 and n.endswith(f"/extra/{PT2_METADATA_FILE}")]
            if not names:
                return {}
            info = archive.getinfo(names[0])
            if info.file_size > MAX_METADATA_BYTES:
                raise ValueError(f"its {names[0]} is {info.file_size:,} bytes, more than metadata ({MAX_METADATA_BYTES:,})")
            metadata = json.loads(archive.read(info))
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"Could not read the metadata of {str(path)!r} (a .pt2 zip archive from torch.export.save): {err}") from err
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"The metadata of {str(path)!r} is not an object of strings, as an export writes it.")
    return metadata


__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "FORMATS",
    "METADATA_KEYS",
    "DeploymentModel",
    "ExportMismatchError",
    "ExportReport",
    "FineTunedModel",
    "check_output_file",
    "export_for_deployment",
    "export_onnx",
    "export_torch_program",
    "load_finetuned",
    "read_metadata",
    "trace",
    "verify",
]
