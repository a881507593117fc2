import pytest
import torch

import terratorch_specmae  # noqa: F401  (registers the models with TerraTorch)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
