"""Converters from public checkpoints of related models into ours: SpectralGPT(+) (cube tokens, S2MAE) and
timm / MAE ViT encoders such as SSL4EO-S12's (2D patch tokens, SIGMAE)."""

from terratorch_specmae.weights.converters.spectralgpt import (
    convert_spectralgpt,
    is_spectralgpt_state,
    spectralgpt_source_layout,
    spectralgpt_state_to_ours,
)
from terratorch_specmae.weights.converters.timm_vit import (
    is_timm_vit_state,
    timm_vit_dropped,
    timm_vit_source_layout,
    timm_vit_state_to_ours,
)

__all__ = [
    "convert_spectralgpt",
    "is_spectralgpt_state",
    "is_timm_vit_state",
    "spectralgpt_source_layout",
    "spectralgpt_state_to_ours",
    "timm_vit_dropped",
    "timm_vit_source_layout",
    "timm_vit_state_to_ours",
]
