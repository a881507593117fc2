"""Adding metrics to a TerraTorch task's train / val / test metric collections, and counting the
updates of the per-class ones."""

from __future__ import annotations

from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.wrappers import ClasswiseWrapper


def add_metrics(task, metrics: dict[str, Metric]) -> None:
    """Add a fresh copy of each metric to every split's collection of ``task`` (after its own
    ``configure_metrics``); the collections' ``train/``, ``val/``, ``test/`` prefixes apply."""
    for collection in (task.train_metrics, task.val_metrics, *task.test_metrics):
        collection.add_metrics({name: metric.clone() for name, metric in metrics.items()})


class CountedClasswiseWrapper(ClasswiseWrapper):
    """``ClasswiseWrapper`` whose wrapped metric knows how often its compute group was updated.

    A ``MetricCollection`` updates only the first metric of a compute group (metrics sharing their
    states, e.g. macro accuracy, per-class accuracy and F1) and hands the others its states and its
    update count; torchmetrics 1.9 sets that count on the wrapper, but the wrapped metric is the one
    that checks it, so after every ``reset`` it warned "The ``compute`` method of metric … was
    called before the ``update`` method" although its states held the epoch's updates.
    """

    def __init__(self, metric: Metric, *args, **kwargs) -> None:
        count = metric._update_count
        super().__init__(metric, *args, **kwargs)
        metric._update_count = count  # the wrapper's own count (always 1) is not the wrapped metric's

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name == "_update_count" and "metric" in self.__dict__.get("_modules", {}):
            self.metric._update_count = value


def count_group_updates(module: nn.Module) -> None:
    """Make every per-class metric (``ClasswiseWrapper``) in ``module``'s metric collections a
    :class:`CountedClasswiseWrapper`: TerraTorch's tasks put per-class accuracy, IoU or F1 in the
    collections beside the macro averages, where they share a compute group (see the class)."""
    for collection in [m for m in module.modules() if isinstance(m, MetricCollection)]:
        for metric in collection.values(copy_state=False):
            if type(metric) is ClasswiseWrapper:
                metric.__class__ = CountedClasswiseWrapper  # the same object: states and labels stay
