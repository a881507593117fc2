"""The command-line tool ``specmae`` (:mod:`terratorch_specmae.cli.specmae`) and the functions behind it.

:func:`export_checkpoint`, :func:`export_spectralgpt` and :func:`check_output_folder` are importable
from here. :func:`main` is the deprecated ``specmae-weights`` command (``specmae export`` …).
"""

from terratorch_specmae.cli.specmae import weights_main as main
from terratorch_specmae.cli.weights import OVERWRITE_HELP, check_output_folder, export_checkpoint, export_spectralgpt

__all__ = ["OVERWRITE_HELP", "check_output_folder", "export_checkpoint", "export_spectralgpt", "main"]
