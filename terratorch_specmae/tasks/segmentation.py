"""Segmentation (change detection, object extraction) with per-class precision, recall and F1."""

from __future__ import annotations

from terratorch.tasks import SemanticSegmentationTask
from torchmetrics.classification import MulticlassF1Score, MulticlassPrecision, MulticlassRecall
from torchmetrics.wrappers import ClasswiseWrapper

from terratorch_specmae.tasks.metrics import add_metrics, count_group_updates


class SegmentationTask(SemanticSegmentationTask):
    """``SemanticSegmentationTask`` plus precision, recall and F1 of every class.

    Subclassed because TerraTorch 1.2.11 logs per-class IoU and accuracy but no per-class
    precision or F1, which change detection (OSCD: F1 of the change class) and object extraction
    report. Logged as ``Precision_<class>``, ``Recall_<class>``, ``F1_<class>`` next to
    upstream's ``IoU_<class>`` (class names from ``class_names``, else the class index).
    """

    def configure_metrics(self) -> None:
        super().configure_metrics()
        num_classes = self.hparams["model_args"]["num_classes"]
        names = self.hparams["class_names"] or [str(i) for i in range(num_classes)]
        kwargs = {"num_classes": num_classes, "ignore_index": self.hparams["ignore_index"], "average": None}
        metrics = {
            name: ClasswiseWrapper(metric(**kwargs), labels=list(names), prefix=f"{name}_")
            for name, metric in (("Precision", MulticlassPrecision), ("Recall", MulticlassRecall), ("F1", MulticlassF1Score))
        }
        add_metrics(self, metrics)
        count_group_updates(self)  # per-class metrics in a compute group: no false "compute before update"
