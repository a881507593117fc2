"""terratorch-specmae: spectral masked-autoencoder pretraining as a TerraTorch plugin.

Importing the package registers its backbones (``s2mae_vit_*``), full models
(``s2mae_vit_*_mae``) and necks (``FoldSpectralGroups``) with TerraTorch.
"""

import sys as _sys

import torch as _torch

# TerraTorch's import sets the float32 matmul precision to "medium" for the process: put back what was in
# effect before it (PyTorch's "highest" if TerraTorch came first), see terratorch_specmae.precision
_PRECISION_BEFORE = "highest" if "terratorch" in _sys.modules else _torch.get_float32_matmul_precision()

from terratorch_specmae import backbones, models, weights
from terratorch_specmae.bands import SENSOR_PRESETS, resolve_bands
from terratorch_specmae.masking import MASKING_STRATEGIES, build_masking, register_masking
from terratorch_specmae.models import SpectralMAE, SpectralViT
from terratorch_specmae.models.necks import FoldSpectralGroups
from terratorch_specmae.precision import restore_float32_precision

restore_float32_precision(_PRECISION_BEFORE)

__version__ = "0.1.0"

__all__ = [
    "MASKING_STRATEGIES",
    "SENSOR_PRESETS",
    "FoldSpectralGroups",
    "SpectralMAE",
    "SpectralViT",
    "__version__",
    "backbones",
    "build_masking",
    "models",
    "register_masking",
    "resolve_bands",
    "weights",
]
