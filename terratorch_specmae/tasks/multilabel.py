"""Multi-label scene classification (BigEarthNet-style) through TerraTorch's MultiLabelClassificationTask."""

from __future__ import annotations

from terratorch.tasks import MultiLabelClassificationTask
from torchmetrics.classification import MultilabelAveragePrecision


class MultiLabelTask(MultiLabelClassificationTask):
    """``MultiLabelClassificationTask`` plus mean average precision, micro and macro.

    Subclassed because TerraTorch 1.2.11's task has no mAP, the metric BigEarthNet results
    (S2MAE's 85.59 / 87.41) are given in. Logged as ``mAP_micro`` (all labels pooled) and
    ``mAP_macro`` (mean of the per-label APs), on the sigmoid scores.
    """

    def configure_metrics(self) -> None:
        super().configure_metrics()
        num_labels = self.hparams["model_args"]["num_classes"]
        for collection in (self.train_metrics, self.val_metrics, *self.test_metrics):
            collection.add_metrics({
                f"mAP_{average}": MultilabelAveragePrecision(num_labels=num_labels, average=average)
                for average in ("micro", "macro")
            })
