"""MAE pretraining through TerraTorch's ReconstructionTask."""

from __future__ import annotations

import importlib
import math
import os

import torch
import yaml
from terratorch.models.model import ReconstructionOutput
from terratorch.tasks import ReconstructionTask
from terratorch.tasks.optimizer_factory import optimizer_factory

from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.tasks.optim import param_groups, scaled_lr, warmup_cosine_factor, warmup_steps_for
from terratorch_specmae.validity import check_stds

# MAE's AdamW settings; `fused` runs the update as one kernel per parameter group (CPU and CUDA)
DEFAULT_OPTIMIZER_HPARAMS = {"weight_decay": 0.05, "betas": (0.9, 0.95), "fused": True}
DEFAULT_LR = 1.5e-4
LR_SCHEDULES = ("warmup_cosine", "constant")
DEFAULT_WARMUP_FRACTION = 0.05  # MAE: 40 warmup epochs of 800


class SpectralMAETask(ReconstructionTask):
    """``ReconstructionTask`` with MAE optimizer defaults, per-band masks and masked-only metrics.

    Subclassed because TerraTorch 1.2.11's task has no optimizer of its own (torchgeo's
    fallback needs a ``patience`` it lacks), computes its "masked" metrics on the *visible*
    pixels, expects masks without a band axis, and mis-indexes model outputs in ``predict_step``.

    Metrics (``train/``, ``val/``, ``test/`` RMSE, MSE, MAE) compare the reconstruction with the
    input on the masked pixels only, in the units the model sees (after the datamodule's
    normalisation). The loss is the model's own (masked MSE on the normalised target).
    ``ignore_index`` is the target value the metrics skip (NaN also marks the visible pixels).

    The task hands the trainer's progress (global step / total steps, in [0, 1]) to the model,
    so curriculum masking follows real training — and resumes where a checkpoint left off,
    since the global step is restored with it.

    Optimisation follows MAE's recipe (:mod:`terratorch_specmae.tasks.optim`):

    * AdamW (``weight_decay`` 0.05, betas 0.9/0.95) with **no weight decay** on biases, norm
      parameters, position tables and the mask token (two parameter groups built here);
    * ``lr``: the absolute learning rate (default 1.5e-4) — or ``base_lr``, from which
      ``lr = base_lr × global batch / 256`` (global batch = batch size × devices × nodes ×
      gradient accumulation; MAE's ViT recipe: ``base_lr: 1.5e-4``). Give one, not both;
    * ``lr_schedule``: ``"warmup_cosine"`` (default) — linear warmup from 0 over ``warmup_epochs``
      (needs ``trainer.max_epochs``) or ``warmup_fraction`` of the optimizer steps (default
      0.05), then cosine decay to ``min_lr_ratio · lr`` (default 0) at the last step, stepped
      every optimizer step; ``"constant"``. A TerraTorch ``scheduler`` (by name, with
      ``scheduler_hparams``) replaces it.

    Besides ``loss``, the model's ``baseline_loss`` (the mean-of-visible predictor's masked error,
    same pixels, same space) is logged, and ``baseline_ratio`` = baseline_loss / loss: above 1
    the model beats that baseline. ``train/lr`` is logged every step. In training, the entries
    besides ``loss`` are each process's own (not reduced over DDP ranks; see ``_log_training_extras``).

    Saliency masking computes spectral indices on raw values: when its ``means``/``stds`` are not
    set, the task takes them from the datamodule's normalisation (``Normalize`` of TerraTorch's
    generic datamodules, or a datamodule's ``means``/``stds``), so they are written once.
    """

    def __init__(
        self,
        model_args: dict,
        model_factory: str = "FullModelFactory",
        masked_metric: bool = True,
        ignore_index: float = float("nan"),
        lr: float | None = None,
        optimizer: str = "AdamW",
        optimizer_hparams: dict | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict | None = None,
        base_lr: float | None = None,
        lr_schedule: str = "warmup_cosine",
        warmup_epochs: float | None = None,
        warmup_fraction: float | None = None,
        min_lr_ratio: float = 0.0,
        freeze_encoder: bool = False,  # noqa: FBT001, FBT002
        freeze_decoder: bool = False,  # noqa: FBT001, FBT002
        plot_on_val: bool | int = False,
    ) -> None:
        # reassigned, not just passed on: Lightning records the hyperparameters from this frame
        optimizer_hparams = dict(DEFAULT_OPTIMIZER_HPARAMS) if optimizer_hparams is None else optimizer_hparams
        if lr is not None and base_lr is not None:
            raise ValueError(f"Give lr (absolute) or base_lr (scaled by the global batch), not both: got {lr} and {base_lr}.")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}.")
        if warmup_epochs is not None and warmup_fraction is not None:
            raise ValueError(f"Give warmup_epochs or warmup_fraction, not both: got {warmup_epochs} and {warmup_fraction}.")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}.")
        lr = DEFAULT_LR if lr is None and base_lr is None else lr
        super().__init__(
            model_factory=model_factory,
            model_args=model_args,
            masked_metric=masked_metric,
            ignore_index=ignore_index,
            lr=lr,
            optimizer=optimizer,
            optimizer_hparams=optimizer_hparams,
            scheduler=scheduler,
            scheduler_hparams=scheduler_hparams,
            freeze_encoder=freeze_encoder,
            freeze_decoder=freeze_decoder,
            plot_on_val=plot_on_val,
        )
        self.save_hyperparameters(
            {"base_lr": base_lr, "lr_schedule": lr_schedule, "warmup_epochs": warmup_epochs,
             "warmup_fraction": warmup_fraction, "min_lr_ratio": min_lr_ratio}
        )

    def training_progress(self) -> float:
        """Global step / total optimizer steps of the fit, in [0, 1]."""
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError(
                "Curriculum masking needs a finite training length: set trainer.max_epochs or trainer.max_steps."
            )
        return min(1.0, self.global_step / max(1, total))

    def forward(self, x, **kwargs):
        if self._trainer is not None and getattr(self.model, "uses_progress", False):
            kwargs.setdefault("progress", self.training_progress())
            if self.training:  # the curriculum's position: after a resume it continues from the restored step
                self.log("train/progress", kwargs["progress"], on_step=True, on_epoch=False, batch_size=1)
        output = self.model(x, **kwargs)
        losses = output.loss if isinstance(output, ReconstructionOutput) else None
        if losses and "baseline_loss" in losses:  # > 1: the model beats the mean-of-visible baseline
            losses["baseline_ratio"] = losses["baseline_loss"].detach() / losses["loss"].detach().clamp(min=1e-12)
        if losses and self.training and self._trainer is not None:
            self._log_training_extras(losses, x.shape[0])
        return output

    def _log_training_extras(self, losses: dict, batch_size: int) -> None:
        """Log the loss entries besides ``loss`` here, per process (``sync_dist=False``), and take them out
        of the dict TerraTorch's loss handler logs with ``sync_dist=True`` on epoch: under DDP the rank-0
        progress bar reduces epoch metrics at the end of a training epoch while the other ranks are
        elsewhere, which hangs the run."""
        for name in [k for k in losses if k != "loss"]:
            value = losses.pop(name)
            self.log(f"train/{name}", value.detach(), on_step=True, on_epoch=True, sync_dist=False, batch_size=batch_size)

    def global_batch_size(self) -> int:
        """Samples per optimizer step over all processes: batch size × devices × nodes × accumulation."""
        trainer = self.trainer
        batch_size = getattr(trainer.datamodule, "batch_size", None) if trainer.datamodule is not None else None
        if not isinstance(batch_size, int):
            raise ValueError(
                "base_lr needs the batch size to compute lr = base_lr × global batch / 256, but the datamodule has "
                f"no integer batch_size (got {batch_size!r}); give the absolute lr instead."
            )
        return batch_size * trainer.world_size * trainer.accumulate_grad_batches

    def learning_rate(self) -> float:
        """The absolute peak learning rate: ``lr``, or ``base_lr × global batch / 256``."""
        if self.hparams.get("base_lr") is not None:
            return scaled_lr(self.hparams["base_lr"], self.global_batch_size())
        return self.hparams["lr"]

    def configure_optimizers(self):
        hparams = dict(self.hparams["optimizer_hparams"] or {})
        weight_decay = hparams.pop("weight_decay", 0.0)
        groups = param_groups(self.named_parameters(), weight_decay)
        lr = self.learning_rate()
        if self.hparams["scheduler"] is not None:  # a TerraTorch scheduler by name replaces ours
            return optimizer_factory(
                self.hparams["optimizer"], lr, groups, hparams, self.hparams["scheduler"], self.monitor,
                self.hparams["scheduler_hparams"],
            )
        optimizer = optimizer_factory(self.hparams["optimizer"], lr, groups, hparams)["optimizer"]
        if self.hparams.get("lr_schedule", "warmup_cosine") == "constant":
            return {"optimizer": optimizer}
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError("lr_schedule 'warmup_cosine' needs a finite training length: set trainer.max_epochs or max_steps.")
        total = int(total)
        warmup_fraction = self.hparams.get("warmup_fraction")
        if warmup_fraction is None and self.hparams.get("warmup_epochs") is None:
            warmup_fraction = DEFAULT_WARMUP_FRACTION
        warmup = warmup_steps_for(total, self.trainer.max_epochs, self.hparams.get("warmup_epochs"), warmup_fraction)
        min_ratio = self.hparams.get("min_lr_ratio", 0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step, total, warmup, min_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step", "frequency": 1}}

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        optimizers = self.trainer.optimizers
        if optimizers:
            self.log("train/lr", optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=1)

    def setup(self, stage: str) -> None:
        """Refuse a run whose config names another task (see :func:`check_config_names_this_task`), then hand
        the datamodule's normalisation to masking strategies that need raw values and lack it."""
        if self._trainer is not None:
            check_config_names_this_task(self, self.trainer.callbacks)
        super().setup(stage)
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        statistics = normalization_statistics(datamodule)
        if statistics is None:
            return
        bands = list(getattr(getattr(self.model, "encoder", None), "bands", None) or [])
        names = bands if len(bands) == len(statistics[0]) else [f"band {i}" for i in range(len(statistics[0]))]
        check_stds(*statistics, names, f"{type(datamodule).__name__}'s normalisation")
        for mae in (m for m in self.model.modules() if isinstance(m, SpectralMAE)):
            if getattr(mae.masking, "needs_raw_values", False) and mae.masking.means is None:
                mae.set_masking_normalization(*statistics, source=f"{type(datamodule).__name__}'s normalisation")

    def mask_input(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Keep the masked pixels of ``x`` and set the visible ones to NaN, which the metrics skip.

        ``mask`` is ``[B, C, H, W]`` (per band) or ``[B, H, W]`` (all bands alike); 1 = masked.
        """
        if mask.ndim == x.ndim - 1:
            mask = mask.unsqueeze(1)
        return torch.where(mask.bool(), x.float(), torch.nan)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0):
        """Reconstructions ``[B, C, H, W]`` and the file names of the batch."""
        output = self(batch["image"])
        if not isinstance(output, ReconstructionOutput):
            output = ReconstructionOutput(*output)
        return output.pred, batch.get("filename")


def _config_task_class(config_files) -> tuple[str, str] | None:
    """``(model class_path, file)`` of the last of LightningCLI's ``-c`` files that names the model's class."""
    for path in reversed(list(config_files or [])):
        try:
            with open(os.fspath(path), encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue
        model = data.get("model") if isinstance(data, dict) else None
        if isinstance(model, dict) and isinstance(model.get("class_path"), str):
            return model["class_path"], os.fspath(path)
    return None


def _names_task(class_path: str, task: torch.nn.Module) -> bool:
    """Whether ``class_path`` (dotted, or a bare class name as jsonargparse accepts) is ``task``'s class or a base."""
    if "." not in class_path:
        return class_path in {cls.__name__ for cls in type(task).__mro__}
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(cls, type) and isinstance(task, cls)


def check_config_names_this_task(task: torch.nn.Module, callbacks) -> None:
    """Refuse ``terratorch fit|validate|test|predict -c <config> --ckpt_path <pretraining checkpoint>``
    when the config names another task (say ``SemanticSegmentationTask``).

    LightningCLI reads the checkpoint's saved hyperparameters, class included, and builds *that*
    task instead of the config's: a segmentation config would then go on pretraining on its
    images, or "predict" reconstructions, without a word. The config files are read from the
    ``SaveConfigCallback`` LightningCLI adds (a run without one is not checked)."""
    # matched by name: importing lightning.pytorch.cli (and jsonargparse) for an isinstance costs every import
    config = next((cb.config for cb in callbacks if "SaveConfigCallback" in {c.__name__ for c in type(cb).__mro__}), None)
    if config is None or not config.get("ckpt_path"):
        return
    named = _config_task_class(config.get("config"))
    if named is None or _names_task(named[0], task):
        return
    class_path, source = named
    ckpt = config.get("ckpt_path")
    raise ValueError(
        f"--ckpt_path {ckpt} is a pretraining checkpoint ({type(task).__name__}), but the config {source} names "
        f"the task {class_path}; Lightning builds the checkpoint's own task, not the config's, so this run would "
        f"not be a {class_path.rpartition('.')[2]}. To start from the pretrained encoder, drop --ckpt_path and pass "
        f"it as the backbone's weights: --model.init_args.model_args.backbone_ckpt_path={ckpt} (backbone_ckpt_path "
        "in model_args). --ckpt_path resumes or evaluates a checkpoint of the config's own task."
    )


def _numbers(values) -> list[float] | None:
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist()
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return values or None


def normalization_statistics(datamodule) -> tuple[list[float], list[float]] | None:
    """Per-band ``(means, stds)`` a datamodule standardises images with, or None if it does not say.

    Read from TerraTorch's ``Normalize`` (``datamodule.aug``, as its generic datamodules build it
    from ``means``/``stds``; with ``concat_bands`` the modalities' statistics in band order) or
    from the datamodule's own ``means``/``stds``."""
    if datamodule is None:
        return None
    for holder in (getattr(datamodule, "aug", None), datamodule):
        means, stds = getattr(holder, "means", None), getattr(holder, "stds", None)
        if means is None or stds is None or isinstance(means, dict):
            continue
        means, stds = _numbers(means), _numbers(stds)
        if means is not None and stds is not None and len(means) == len(stds):
            return means, stds
    return None
