"""Run the ``terratorch`` command in the test process, or in a fresh one where the test needs it.

``run_cli("fit", "-c", "configs/specmae_seg.yaml", ...)`` is what ``terratorch fit -c ...`` does
(``terratorch.__main__`` calls ``build_lightning_cli()`` on ``sys.argv``), without the 15-20 s a
fresh Python spends importing TerraTorch: it runs from the repository root, as the fresh-process
tests did, and returns the ``LightningCLI`` (``.trainer``, ``.model``, ``.datamodule``). A run that
fails raises (``SystemExit`` for a usage error, the exception itself otherwise) instead of
returning a status. Global state that a run may change is put back afterwards: the working
folder, ``sys.argv``, environment variables (``build_lightning_cli`` sets GDAL's, ``seed_everything``
``PL_GLOBAL_SEED``), ``sys.path``, torch's float32 matmul precision, default dtype, thread count,
grad mode and deterministic-algorithms flag, warning filters, logging handlers and levels,
signal handlers and matplotlib's rcParams. The random number generators are left seeded as the
run left them.

``run_script(path, *args)`` runs an example script the same way (as ``__main__``, in this
process) and returns what it printed.

``terratorch_process(...)`` runs the real ``terratorch`` executable in a fresh process, for the
tests that are about process start-up (registration on import, ``custom_modules_path``,
environment variables read at import), need a process to kill, or spawn processes (DDP).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TERRATORCH = shutil.which("terratorch", path=str(Path(sys.executable).parent)) or "terratorch"
#: The variable TerraTorch imports custom modules from; the tests run without it unless they set it.
CUSTOM_MODULES = "TERRATORCH_CUSTOM_MODULE_PATH"


@contextlib.contextmanager
def restored_global_state():
    """Put back the process-wide state a ``terratorch`` run may change (see the module docstring)."""
    import matplotlib

    cwd, environ, path = os.getcwd(), dict(os.environ), list(sys.path)
    precision, dtype, threads = torch.get_float32_matmul_precision(), torch.get_default_dtype(), torch.get_num_threads()
    grad, deterministic = torch.is_grad_enabled(), torch.are_deterministic_algorithms_enabled()
    deterministic_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    logging_state = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]
    signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s}
    try:
        with warnings.catch_warnings(), matplotlib.rc_context():
            yield
    finally:
        os.chdir(cwd)
        for key in set(os.environ) - set(environ):
            del os.environ[key]
        os.environ.update(environ)
        sys.path[:] = path
        torch.set_float32_matmul_precision(precision)
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
        torch.use_deterministic_algorithms(deterministic, warn_only=deterministic_warn_only)
        for lg, handlers, level, propagate, disabled in logging_state:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
        for number, handler in signals.items():
            if handler is not None:
                signal.signal(number, handler)


def run_cli(*args: str, run: bool = True):
    """``terratorch *args`` in this process, from the repository root; returns the LightningCLI.

    ``run=False``: only build it (trainer, model and datamodule constructed; ``args`` without a subcommand)."""
    from terratorch.cli_tools import build_lightning_cli

    import terratorch_specmae  # noqa: F401  (registered, as tests/conftest.py has it)

    argv = sys.argv
    with restored_global_state():
        os.environ.pop(CUSTOM_MODULES, None)
        os.chdir(ROOT)
        sys.argv = [TERRATORCH, *args]  # what the command sees (LightningCLI warns when sys.argv and args differ)
        try:
            return build_lightning_cli(list(args), run=run)
        finally:
            sys.argv = argv


def run_script(script: Path, *args: str, cwd: Path | None = None) -> str:
    """``python script *args`` in this process (as ``__main__``, from ``cwd``); returns its standard output."""
    printed, argv = io.StringIO(), sys.argv
    with restored_global_state(), contextlib.redirect_stdout(printed):
        sys.argv = [str(script), *args]
        try:
            if cwd is not None:
                os.chdir(cwd)
            runpy.run_path(str(script), run_name="__main__")
        finally:
            sys.argv = argv
    return printed.getvalue()


def terratorch_process(
    *args: str, cwd: Path = ROOT, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """``terratorch *args`` in a fresh process (without TERRATORCH_CUSTOM_MODULE_PATH unless ``env`` sets it)."""
    base = {k: v for k, v in os.environ.items() if k != CUSTOM_MODULES}
    result = subprocess.run(
        [TERRATORCH, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, (
            f"terratorch {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return result


def only(paths) -> Path:
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]
