"""Converters from public checkpoints of related models into ours."""

from terratorch_specmae.weights.converters.spectralgpt import (
    convert_spectralgpt,
    is_spectralgpt_state,
    spectralgpt_source_layout,
    spectralgpt_state_to_ours,
)

__all__ = ["convert_spectralgpt", "is_spectralgpt_state", "spectralgpt_source_layout", "spectralgpt_state_to_ours"]
