"""albumentations follow torch's seed: in the main process and in each data loader worker."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from terratorch_specmae.seeding import find_composes, process_seed, seed_composes, seed_loader_workers


def jitter() -> A.Compose:
    """A continuous random transform: two draws coincide only if the generator states do."""
    return A.Compose([A.RandomBrightnessContrast(brightness_limit=0.5, contrast_limit=0.0, p=1.0)])


class Ones(Dataset):
    """Every sample the same image; what comes out is the transform's draw alone."""

    def __init__(self, n: int = 8):
        self.n, self.transform = n, jitter()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        image = np.full((4, 4, 1), 0.5, np.float32)
        return torch.from_numpy(self.transform(image=image)["image"]).mean()


class Holder:  # a datamodule-like object: transforms in attributes, lists and dicts
    def __init__(self):
        self.train_transform = jitter()
        self.datasets = [Ones(2)]
        self.by_modality = {"s2": jitter(), "name": "x"}


def draws(compose: A.Compose, n: int = 5) -> list[float]:
    return [float(compose(image=np.full((4, 4, 1), 0.5, np.float32))["image"].mean()) for _ in range(n)]


def test_find_composes_walks_attributes_lists_and_dicts_once():
    holder = Holder()
    holder.alias = holder.train_transform  # the same object twice: found once
    found = find_composes(holder)
    assert [id(c) for c in found] == [id(holder.train_transform), id(holder.datasets[0].transform), id(holder.by_modality["s2"])]


def test_seeded_composes_repeat_and_differ_from_each_other():
    a, b = Holder(), Holder()
    seed_composes(a, 7), seed_composes(b, 7)
    assert draws(a.train_transform) == draws(b.train_transform)
    assert draws(a.by_modality["s2"]) != draws(Holder().train_transform)  # unseeded: OS entropy
    c = Holder()
    seed_composes(c, 7)
    assert draws(c.train_transform) != draws(c.by_modality["s2"])  # each Compose its own stream
    seed_composes(c, 8)
    assert draws(c.train_transform) != draws(Holder().train_transform)


def test_process_seed_follows_torch_seed_and_rank():
    torch.manual_seed(3)
    assert process_seed(0) == 3 and process_seed(1) != process_seed(0)


def epoch(seed: int) -> list[float]:
    loader = seed_loader_workers(DataLoader(Ones(8), batch_size=2, num_workers=2), rank=0)
    torch.manual_seed(seed)  # what seed_everything does: the workers' base seed comes from it
    return torch.cat(list(loader)).tolist()


@pytest.mark.parametrize("wrap", [False, True])
def test_workers_draw_reproducible_and_distinct_augmentations(wrap):
    if not wrap:  # the problem: forked workers share one generator state, whatever the seed
        torch.manual_seed(0)
        values = torch.cat(list(DataLoader(Ones(8), batch_size=2, num_workers=2))).tolist()
        assert values[0:2] == values[2:4]  # batch 0 (worker 0) and batch 1 (worker 1) draw alike
        return
    first, again, other = epoch(0), epoch(0), epoch(1)
    assert first == again
    assert first != other
    assert first[0:2] != first[2:4]  # the two workers draw differently
    assert len(set(first)) == len(first)


def test_seed_loader_workers_keeps_an_existing_init_and_wraps_once():
    calls = []
    loader = DataLoader(Ones(2), num_workers=1, worker_init_fn=calls.append)
    seed_loader_workers([loader], 0)
    seed_loader_workers({"a": loader}, 0)
    assert loader.worker_init_fn.keywords["previous"] == calls.append
    assert getattr(loader.worker_init_fn.keywords["previous"], "func", None) is None  # not wrapped twice
    list(loader)  # runs in a worker: the previous init is still called there (its list is the worker's copy)
    no_workers = DataLoader(Ones(2))
    assert seed_loader_workers(no_workers, 0).worker_init_fn is None
