"""Converters from public checkpoints of related models into ours."""

from terratorch_specmae.converters.spectralgpt import convert_spectralgpt, spectralgpt_state_to_ours

__all__ = ["convert_spectralgpt", "spectralgpt_state_to_ours"]
