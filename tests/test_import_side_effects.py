"""Importing the package changes nothing of the user's session it did not mean to (no import-time side effects),
and puts back the float32 matmul precision TerraTorch's import changes."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_keeps_the_users_matplotlib_backend(tmp_path):
    """A notebook user's backend survives ``import terratorch_specmae`` (the README's one extra line),
    the callbacks and the plotting helpers; a figure is still saved headless."""
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import terratorch_specmae, terratorch_specmae.callbacks, terratorch_specmae.plotting as p; "
        "import numpy as np, sys, pathlib; "
        "fig = p.class_map_figure(np.zeros((8, 8), np.uint8), 255, ['a']); "
        "out = p.save_figure(fig, pathlib.Path(sys.argv[1]) / 'map.png'); "
        "assert out.read_bytes()[:8] == b'\\x89PNG\\r\\n\\x1a\\n'; "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "svg"


def test_float32_matmul_precision_is_true_float32_after_import_unless_the_user_chose_one():
    """Importing TerraTorch sets "medium" (bf16 matmuls on AMX CPUs and recent GPUs); importing the plugin puts
    back the precision in effect before (PyTorch's "highest" when TerraTorch came first), and leaves a precision
    chosen through terratorch_FLOAT_32_PRECISION alone."""
    import os

    show = "import torch; print(torch.get_float32_matmul_precision())"
    cases = {
        "TerraTorch first, then the plugin": (
            "import terratorch; " + show + "; import terratorch_specmae; " + show, None, "medium\nhighest"
        ),
        "the plugin alone": ("import terratorch_specmae; " + show, None, "highest"),
        "the user's 'high' before the import": (
            "import torch; torch.set_float32_matmul_precision('high'); import terratorch_specmae; " + show, None, "high"
        ),
        "terratorch_FLOAT_32_PRECISION=medium": ("import terratorch_specmae; " + show, "medium", "medium"),
    }
    env = {k: v for k, v in os.environ.items() if k != "terratorch_FLOAT_32_PRECISION"}
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", code],
            env={**env, **({"terratorch_FLOAT_32_PRECISION": variable} if variable else {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, (code, variable, _) in cases.items()
    }
    for name, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, (name, err[-2000:])
        assert out.strip() == cases[name][2], (name, out)
