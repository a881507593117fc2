"""MAE pretraining through TerraTorch's ReconstructionTask."""

from __future__ import annotations

import math

import torch
from terratorch.models.model import ReconstructionOutput
from terratorch.tasks import ReconstructionTask
from terratorch.tasks.optimizer_factory import optimizer_factory

# MAE's AdamW settings; `fused` runs the update as one kernel per parameter group (CPU and CUDA)
DEFAULT_OPTIMIZER_HPARAMS = {"weight_decay": 0.05, "betas": (0.9, 0.95), "fused": True}


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
    """

    def __init__(
        self,
        model_args: dict,
        model_factory: str = "FullModelFactory",
        masked_metric: bool = True,
        ignore_index: float = float("nan"),
        lr: float = 1.5e-4,
        optimizer: str = "AdamW",
        optimizer_hparams: dict | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict | None = None,
        freeze_encoder: bool = False,  # noqa: FBT001, FBT002
        freeze_decoder: bool = False,  # noqa: FBT001, FBT002
        plot_on_val: bool | int = False,
    ) -> None:
        # reassigned, not just passed on: Lightning records the hyperparameters from this frame
        optimizer_hparams = dict(DEFAULT_OPTIMIZER_HPARAMS) if optimizer_hparams is None else optimizer_hparams
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
        return self.model(x, **kwargs)

    def configure_optimizers(self):
        return optimizer_factory(
            self.hparams["optimizer"],
            self.hparams["lr"],
            self.parameters(),
            self.hparams["optimizer_hparams"],
            self.hparams["scheduler"],
            self.monitor,
            self.hparams["scheduler_hparams"],
        )

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
