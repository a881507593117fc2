"""The suite's shared settings.

**Precision.** Importing TerraTorch sets torch's float32 matmul precision to "medium" (its Clay
module), which runs float32 matmuls in bf16 where the CPU has the units for it (Intel AMX; not
AMD Zen 4's AVX512-BF16), so a numerical comparison would hold on one machine kind and fail on the
other. The suite runs float32 in true float32 ("highest") everywhere: in this process (set after
the import below) and in every process it starts (``terratorch_FLOAT_32_PRECISION=highest``,
which TerraTorch's command line reads after its imports; Lightning's DDP ranks inherit it). Tests
of bf16 paths ask for bf16 explicitly (autocast, ``precision: bf16-mixed``) and say so.
"""

import os

os.environ["terratorch_FLOAT_32_PRECISION"] = "highest"  # spawned `terratorch` processes and in-process runs

import pytest
import tiny
import torch

import terratorch_specmae  # noqa: F401  (registers the models with TerraTorch)

torch.set_float32_matmul_precision("highest")  # after TerraTorch's import set it to "medium"


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
    """True fp32 matmuls for a test, whatever an earlier test left (the suite's default already; see the
    module docstring): under "medium" a batch of tiles and a single tile round differently."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


@pytest.fixture
def memory_heavy(tmp_path_factory):
    """One test that holds several GB at a time across pytest-xdist's workers: a ViT-L fine-tune peaks at ~10 GB
    (Lightning serialises its 4 GB checkpoint in memory), and two such tests at once exhausted a 24 GB machine.
    The lock file is in the session's shared temporary folder (each worker's basetemp is below it)."""
    from filelock import FileLock

    with FileLock(str(tmp_path_factory.getbasetemp().parent / "memory_heavy.lock")):
        yield


@pytest.fixture
def catalogue_restored():
    """The pretrained-weights catalogue put back as it was after a test that registers entries."""
    from terratorch_specmae.weights import DEFAULT_TAGS, PRETRAINED_CFGS

    saved, defaults = {variant: dict(tags) for variant, tags in PRETRAINED_CFGS.items()}, dict(DEFAULT_TAGS)
    yield
    PRETRAINED_CFGS.clear()
    PRETRAINED_CFGS.update(saved)
    DEFAULT_TAGS.clear()
    DEFAULT_TAGS.update(defaults)


@pytest.fixture
def tiny_encoder():
    """``tiny_encoder(**overrides)`` → a tiny SpectralViT (see tests/tiny.py)."""
    return tiny.tiny_encoder


@pytest.fixture
def tiny_mae():
    """``tiny_mae(**overrides)`` → a tiny S2MAE built as the registry builds it (see tests/tiny.py)."""
    return tiny.tiny_mae
