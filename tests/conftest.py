import os

import pytest
import tiny
import torch

import terratorch_specmae  # noqa: F401  (registers the models with TerraTorch)


def pytest_configure(config):
    """Under pytest-xdist (pyproject's addopts: one worker per core) each worker, and the processes its
    tests start, gets its share of the cores: two workers with two threads each on two cores run
    torch's kernels slower than one thread each."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def true_fp32():
    """Importing TerraTorch sets float32 matmul precision to "medium" (bf16 on AMX CPUs), under
    which a batch of tiles and a single tile round differently; compare in true fp32."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


@pytest.fixture
def tiny_encoder():
    """``tiny_encoder(**overrides)`` → a tiny SpectralViT (see tests/tiny.py)."""
    return tiny.tiny_encoder


@pytest.fixture
def tiny_mae():
    """``tiny_mae(**overrides)`` → a tiny S2MAE built as the registry builds it (see tests/tiny.py)."""
    return tiny.tiny_mae
