"""Importing the package changes nothing of the user's session (issue 15: no import-time side effects)."""

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
