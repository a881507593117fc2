"""The float32 matmul precision the plugin leaves in effect: true float32 unless the user says otherwise.

Importing TerraTorch sets ``torch.set_float32_matmul_precision("medium")`` for the whole process (its
Clay v1.5 model module does, at import). On CPUs with AMX and on recent GPUs, "medium" runs float32
matrix products in bfloat16, so a run configured with ``precision: 32`` computes in bf16 without a
word: features differ from true float32 by ~1e-2 relative, an ONNX export's check against PyTorch by
~2e-3 instead of ~5e-7. Importing this package puts back the precision that was in effect before
TerraTorch's import (PyTorch's default, "highest", when TerraTorch was imported first), unless the
user chose one through TerraTorch's own variable ``terratorch_FLOAT_32_PRECISION`` (which the
``terratorch`` command applies). Mixed precision (``precision: bf16-mixed``, autocast) is unaffected:
it asks for bf16 explicitly.
"""

from __future__ import annotations

import logging
import os
import sys

import torch

#: TerraTorch's variable for the float32 matmul precision (read by the ``terratorch`` command).
PRECISION_VARIABLE = "terratorch_FLOAT_32_PRECISION"
#: The module whose import sets "medium".
SETTER_MODULE = "terratorch.models.backbones.clay_v15.model"

log = logging.getLogger(__name__)


def restore_float32_precision(before: str) -> str | None:
    """Set the float32 matmul precision back to ``before`` if TerraTorch's import changed it to "medium" and
    the user did not choose one through :data:`PRECISION_VARIABLE`; return the precision set, else None."""
    if os.environ.get(PRECISION_VARIABLE) is not None or SETTER_MODULE not in sys.modules:
        return None
    if torch.get_float32_matmul_precision() != "medium" or before == "medium":
        return None
    torch.set_float32_matmul_precision(before)
    log.info(
        "terratorch-specmae: float32 matmul precision set back to %r (importing TerraTorch had set 'medium', "
        "which runs float32 matmuls in bf16 on AMX CPUs and recent GPUs); set %s=medium to keep TerraTorch's.",
        before,
        PRECISION_VARIABLE,
    )
    return before
