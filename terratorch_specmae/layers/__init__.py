"""The bottom layer: pieces shared by the models and the masking strategies.

``tokenizer`` (the token grid, cube / patch tokenizer, patchify / unpatchify), ``pos_embed``
(spatial + spectral position tables), ``tokens`` (the mask representation, token gather /
scatter) and ``attention`` (our bf16 CPU attention kernel as a timm ``Attention`` subclass).
Modules here import nothing of the package but :mod:`terratorch_specmae.bands` and
:mod:`terratorch_specmae.validity`; ``models`` and ``masking`` import them, never each other's
internals for these.
"""
