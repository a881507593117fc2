"""Multi-label scene classification (BigEarthNet-style) through TerraTorch's MultiLabelClassificationTask."""

from __future__ import annotations

from terratorch.tasks import MultiLabelClassificationTask
from torchmetrics.classification import MultilabelAveragePrecision

from terratorch_specmae.tasks.metrics import add_metrics, count_group_updates


class MultiLabelTask(MultiLabelClassificationTask):
    """``MultiLabelClassificationTask`` plus mean average precision, micro and macro.

    Subclassed because TerraTorch 1.2.11's task has no mAP, the metric BigEarthNet results
    (S2MAE's 85.59 / 87.41) are given in. Logged as ``mAP_micro`` (all labels pooled) and
    ``mAP_macro`` (mean of the per-label APs), on the sigmoid scores.
    """

    def configure_metrics(self) -> None:
        super().configure_metrics()
        num_labels = self.hparams["model_args"]["num_classes"]
        add_metrics(self, {
            f"mAP_{average}": MultilabelAveragePrecision(num_labels=num_labels, average=average)
            for average in ("micro", "macro")
        })
        count_group_updates(self)  # per-class metrics in a compute group: no false "compute before update"
