"""A module folder for tools that import plugins only from a folder path.

terratorch-iterate has no ``class_path`` through which our package could be imported and scans
no entry points; it imports ``custom_modules_path`` (a folder: its parent goes on ``sys.path``,
then the folder is imported by name) before it builds any model. Importing this folder imports
``terratorch_specmae``, which registers the S2MAE / SIGMAE backbones with TerraTorch's
registries. ``configs/benchmarks/geobench2_*.yaml`` name it; TerraTorch's own
``--custom_modules_path`` / ``TERRATORCH_CUSTOM_MODULE_PATH`` take the same folder.

It also sets ``MLFLOW_ALLOW_FILE_STORE=true`` unless it is set: terratorch-iterate 0.4 keeps its
runs in MLflow's file store (``storage_uri`` is a folder), which MLflow 3.17 refuses without that
variable; iterate imports this folder before it opens the store.
"""

import os

import terratorch_specmae  # noqa: F401  (registers the backbones on import)

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
