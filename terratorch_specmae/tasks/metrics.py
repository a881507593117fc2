"""Adding metrics to a TerraTorch task's train / val / test metric collections."""

from __future__ import annotations

from torchmetrics import Metric


def add_metrics(task, metrics: dict[str, Metric]) -> None:
    """Add a fresh copy of each metric to every split's collection of ``task`` (after its own
    ``configure_metrics``); the collections' ``train/``, ``val/``, ``test/`` prefixes apply."""
    for collection in (task.train_metrics, task.val_metrics, *task.test_metrics):
        collection.add_metrics({name: metric.clone() for name, metric in metrics.items()})
