"""Pixel classification of hyperspectral scenes through TerraTorch's ClassificationTask."""

from __future__ import annotations

import torch
from terratorch.tasks import ClassificationTask
from torchmetrics.classification import MulticlassCohenKappa

from terratorch_specmae.tasks.metrics import add_metrics, count_group_updates


class PixelClassificationTask(ClassificationTask):
    """``ClassificationTask`` plus Cohen's κ, and predictions a scene-map writer can place.

    Subclassed because TerraTorch 1.2.11's task has no κ (HSI papers report OA, AA and κ) and
    its ``predict_step`` output is written per input file, while a pixel has no file of its
    own. Metrics: OA = ``Accuracy_Micro``, AA = ``Accuracy`` (macro), κ = ``Kappa``.
    ``predict_step`` returns ``(classes, [])``: TerraTorch's per-file writer then writes nothing,
    and :class:`~terratorch_specmae.callbacks.ClassMapWriter` assembles the map of the scene.
    """

    def configure_metrics(self) -> None:
        super().configure_metrics()
        num_classes = self.hparams["model_args"]["num_classes"]
        add_metrics(self, {"Kappa": MulticlassCohenKappa(num_classes=num_classes, ignore_index=self.hparams["ignore_index"])})
        count_group_updates(self)  # per-class metrics in a compute group: no false "compute before update"

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> tuple[torch.Tensor, list]:
        classes, _ = super().predict_step(batch, batch_idx, dataloader_idx)
        return classes, []
