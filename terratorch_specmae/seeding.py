"""Reproducible albumentations: seed every ``Compose`` of a datamodule from torch's seed.

albumentations (2.x) draws from each ``Compose``'s own generator, which ignores global seeds:
TerraTorch's datamodules build their ``Compose`` with ``seed=None`` (a new OS-entropy seed per
instance), so two runs with ``seed_everything: 0`` augment differently, and the data loader
workers, forked from one process, all draw the *same* augmentation stream. The functions here
seed those generators from torch's seed, which ``seed_everything`` (and, per worker, PyTorch's
data loader) already sets reproducibly:

* in the main process (``num_workers: 0``): from ``torch.initial_seed()`` and the process rank;
* in each data loader worker: Lightning's ``pl_worker_init_function`` first (what
  ``seed_everything(workers=True)`` would install: numpy, random and torch from the base seed,
  worker id and rank), then every ``Compose`` of the worker's copy of the dataset from the
  worker's torch seed.

:class:`terratorch_specmae.callbacks.SeedAugmentations` applies this to a ``terratorch fit`` run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping

import torch
from albumentations.core.composition import BaseCompose
from lightning.fabric.utilities.seed import pl_worker_init_function

_MAX_DEPTH = 6  # datamodule → dataset → transform wrapper → dict of Compose: a few levels suffice
_PRIME = 1_000_003


def find_composes(root: object) -> list[BaseCompose]:
    """Every outermost albumentations ``Compose`` reachable from ``root`` through attributes, lists,
    tuples and dicts (depth ≤ 6), each once, in a deterministic order (attribute insertion order)."""
    found: list[BaseCompose] = []
    seen: set[int] = set()

    def children(obj) -> Iterator[object]:
        if isinstance(obj, Mapping):
            yield from obj.values()
        elif isinstance(obj, (list, tuple)):
            yield from obj
        elif hasattr(obj, "__dict__") and not isinstance(obj, (type, torch.nn.Module, torch.Tensor)):
            yield from vars(obj).values()

    def walk(obj, depth: int) -> None:
        if id(obj) in seen or depth > _MAX_DEPTH or isinstance(obj, (str, bytes, int, float, torch.Tensor)):
            return
        seen.add(id(obj))
        if isinstance(obj, BaseCompose):  # its inner transforms follow its seed
            found.append(obj)
            return
        for child in children(obj):
            walk(child, depth + 1)

    walk(root, 0)
    return found


def seed_composes(root: object, seed: int) -> list[BaseCompose]:
    """Seed every ``Compose`` reachable from ``root``: the i-th gets ``seed + i·1000003`` (mod 2³²),
    so no two share a stream. Returns them."""
    composes = find_composes(root)
    for i, compose in enumerate(composes):
        compose.set_random_seed((seed + i * _PRIME) % 2**32)
    return composes


def process_seed(rank: int) -> int:
    """The main process's augmentation seed: torch's seed (``seed_everything``'s) mixed with the rank,
    so data-parallel ranks draw different augmentations."""
    return (torch.initial_seed() + rank * _PRIME * _PRIME) % 2**32


def _seed_worker(worker_id: int, rank: int, previous: Callable[[int], None] | None) -> None:
    if previous is not None:
        previous(worker_id)
    else:
        pl_worker_init_function(worker_id, rank)  # numpy / random / torch per worker and rank
    info = torch.utils.data.get_worker_info()
    seed_composes(info.dataset, torch.initial_seed() % 2**32)  # torch's worker seed: base seed + worker id


def augmentation_worker_init(rank: int, previous: Callable[[int], None] | None = None) -> Callable[[int], None]:
    """A picklable ``worker_init_fn``: ``previous`` (or Lightning's per-worker seeding), then every
    ``Compose`` of the worker's dataset seeded from the worker's torch seed."""
    return functools.partial(_seed_worker, rank=rank, previous=previous)


def seed_loader_workers(loaders, rank: int):
    """Give every ``DataLoader`` with workers in ``loaders`` (one, or a list / dict of them, as a
    datamodule's hooks return) :func:`augmentation_worker_init`, keeping any init it has."""
    if isinstance(loaders, Mapping):
        for loader in loaders.values():
            seed_loader_workers(loader, rank)
    elif isinstance(loaders, (list, tuple)):
        for loader in loaders:
            seed_loader_workers(loader, rank)
    elif isinstance(loaders, torch.utils.data.DataLoader) and loaders.num_workers > 0:
        init = loaders.worker_init_fn
        if getattr(init, "func", None) is not _seed_worker:
            loaders.worker_init_fn = augmentation_worker_init(rank, init)
    return loaders
