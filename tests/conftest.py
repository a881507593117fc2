import pytest
import tiny
import torch

import terratorch_specmae  # noqa: F401  (registers the models with TerraTorch)


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
