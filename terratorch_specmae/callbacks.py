"""Lightning callbacks that save PNGs where people look (reconstructions, saliency masks, predictions)
and write scene class maps.

Naming one of them in a config's ``trainer.callbacks`` also imports this package, which
registers our backbones with TerraTorch (see README, "Using our backbones in your configs").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from terratorch.tasks import MultiLabelClassificationTask

from terratorch_specmae.atomic import PendingFile, atomic_path
from terratorch_specmae.plotting import (
    class_map_figure,
    classification_figure,
    detection_figure,
    multilabel_figure,
    reconstruction_figure,
    saliency_masking_figure,
    save_figure,
    segmentation_figure,
)
from terratorch_specmae.seeding import process_seed, seed_composes, seed_loader_workers
from terratorch_specmae.tasks.metrics import count_group_updates


def _as_tensor(value):
    """TerraTorch's own validation plotting unbinds batch tensors into tuples in place; undo that."""
    return torch.stack(value) if isinstance(value, (tuple, list)) else value


def _output_dir(trainer: pl.Trainer, subdir: str, out_dir: str | None) -> Path:
    """``<log dir>/<subdir>``. Read from the logger, not ``trainer.log_dir``: that one is a collective
    (a broadcast from rank 0) and the callbacks draw on rank 0 alone, so under DDP it would hang."""
    logger = trainer.logger
    root = out_dir or (logger.log_dir if logger is not None and getattr(logger, "log_dir", None) else None)
    return Path(root or trainer.default_root_dir) / subdir


class _FirstValBatchCallback(pl.Callback):
    """Draws from the first validation batch every ``every_n_epochs`` epochs, on rank 0."""

    def __init__(self, every_n_epochs: int = 1, num_samples: int = 4, out_dir: str | None = None) -> None:
        if every_n_epochs < 1 or num_samples < 1:
            raise ValueError(f"every_n_epochs and num_samples must be >= 1, got {every_n_epochs}, {num_samples}.")
        self.every_n_epochs, self.num_samples, self.out_dir = every_n_epochs, num_samples, out_dir
        self.saved: list[Path] = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if trainer.current_epoch % self.every_n_epochs:
            return
        with torch.no_grad():
            fig, name = self.draw(pl_module, batch)
        path = _output_dir(trainer, self.subdir, self.out_dir) / f"{name}_epoch{trainer.current_epoch:03d}.png"
        self.saved.append(save_figure(fig, path))


class ReconstructionPNGs(_FirstValBatchCallback):
    """Saves input | mask | reconstruction for a few bands of a few validation samples.

    The mask is drawn with a fixed seed so the pictures of successive epochs are comparable
    (curriculum strategies still follow the current training progress).
    PNGs go to ``<log dir>/reconstructions/``.
    """

    subdir = "reconstructions"

    def __init__(
        self,
        bands: Sequence[int] = (0, 1, 2),
        every_n_epochs: int = 1,
        num_samples: int = 4,
        seed: int = 0,
        out_dir: str | None = None,
    ) -> None:
        super().__init__(every_n_epochs, num_samples, out_dir)
        self.bands, self.seed = list(bands), seed

    def draw(self, pl_module, batch):
        image = _as_tensor(batch["image"])[: self.num_samples]
        generator = torch.Generator(device=image.device).manual_seed(self.seed)
        was_training = pl_module.training
        pl_module.eval()
        output = pl_module(image, generator=generator)  # the task adds training progress for curricula
        pl_module.train(was_training)
        bands = [b for b in self.bands if b < image.shape[1]]
        names = list(getattr(getattr(pl_module.model, "encoder", None), "bands", ())) or None
        return reconstruction_figure(image, output.pred, output.mask, bands, names), "reconstruction"


class PredictionPNGs(_FirstValBatchCallback):
    """Saves RGB | reference | prediction maps (segmentation), titled image grids (classification;
    multi-label: reference labels and predicted ones with probability ≥ 0.5) or RGB with
    reference | predicted boxes (detection).

    PNGs go to ``<log dir>/predictions/``. ``rgb`` picks the bands of the colour composite;
    ``class_colors`` (matplotlib colours, one per class) colour the label maps. For detection,
    ``class_names`` name the box labels from 0 (background) on, and boxes scoring below
    ``score_threshold`` (default: the task's) are not drawn.
    """

    subdir = "predictions"

    def __init__(
        self,
        rgb: Sequence[int] = (2, 1, 0),
        class_names: Sequence[str] | None = None,
        class_colors: Sequence[str] | None = None,
        every_n_epochs: int = 1,
        num_samples: int = 4,
        out_dir: str | None = None,
        score_threshold: float | None = None,
    ) -> None:
        super().__init__(every_n_epochs, num_samples, out_dir)
        self.rgb, self.class_names = list(rgb), list(class_names) if class_names else None
        self.score_threshold = score_threshold
        self.class_colors = list(class_colors) if class_colors else None

    def draw(self, pl_module, batch):
        image = _as_tensor(batch["image"])[: self.num_samples]
        was_training = pl_module.training
        pl_module.eval()
        logits = pl_module(image).output
        pl_module.train(was_training)
        if isinstance(logits, list):  # torchvision detector: one dict of boxes per image
            targets = None
            if "boxes" in batch:
                targets = [{"boxes": b, "labels": lab} for b, lab in zip(batch["boxes"], batch["labels"])]
            threshold = self.score_threshold
            if threshold is None:
                threshold = getattr(pl_module, "score_threshold", 0.5)
            fig = detection_figure(image, targets, logits, self.rgb, self.class_names, threshold, self.class_colors)
            return fig, "detection"
        prediction = logits.argmax(dim=1)
        if logits.ndim == 4:
            target = batch.get("mask")
            target = _as_tensor(target)[: self.num_samples] if target is not None else None
            return (
                segmentation_figure(
                    image, target, prediction, self.rgb, logits.shape[1], self.class_names, self.class_colors
                ),
                "segmentation",
            )
        target = batch.get("label")
        target = _as_tensor(target)[: self.num_samples] if target is not None else None
        if isinstance(pl_module, MultiLabelClassificationTask):  # independent labels: sigmoid ≥ 0.5
            fig = multilabel_figure(image, target, logits.sigmoid(), self.rgb, self.class_names)
            return fig, "multilabel"
        return classification_figure(image, target, prediction, self.rgb, self.class_names), "classification"


class SaliencyMaskPNGs(pl.Callback):
    """Saves index maps | saliency map | chosen mask at points of training progress (start, middle, end).

    For models with saliency masking (SIGMAE). The samples are the first ``num_samples`` of the
    first validation batch (of the first training batch when there is no sanity check), kept
    so that every PNG shows the same images; the mask is drawn with a fixed ``seed`` at the
    progress training has reached, so the pictures show the curriculum moving hidden cells
    toward the salient ones. PNGs go to ``<log dir>/saliency/``. ``rgb`` picks the composite's bands.
    """

    subdir = "saliency"

    def __init__(
        self,
        at: Sequence[float] = (0.0, 0.5, 1.0),
        rgb: Sequence[int] = (2, 1, 0),
        num_samples: int = 2,
        seed: int = 0,
        out_dir: str | None = None,
    ) -> None:
        if not at or any(not 0.0 <= p <= 1.0 for p in at):
            raise ValueError(f"at must be progress points in [0, 1], got {list(at)}.")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
        self.at, self.rgb, self.num_samples, self.seed, self.out_dir = sorted(at), list(rgb), num_samples, seed, out_dir
        self.images: torch.Tensor | None = None
        self.pending: list[float] = []
        self.saved: list[Path] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        masking = getattr(getattr(pl_module, "model", None), "masking", None)
        if not hasattr(masking, "index_maps"):
            raise ValueError(
                f"SaliencyMaskPNGs draws saliency masking, but the model's masking is {masking!r}: "
                "set model_args.masking: saliency or remove the callback."
            )

    def on_train_start(self, trainer, pl_module) -> None:
        # here, not on_fit_start: Lightning restores a resumed fit's step after on_fit_start
        progress = pl_module.training_progress() if trainer.estimated_stepping_batches else 0.0
        self.pending = [p for p in self.at if p >= progress]  # a resumed fit skips the points it passed

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.images is None and batch_idx == 0:
            self.images = _as_tensor(batch["image"])[: self.num_samples].detach().clone()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.images is None:
            self.images = _as_tensor(batch["image"])[: self.num_samples].detach().clone()
        progress = pl_module.training_progress()
        reached = [p for p in self.pending if p < 1.0 and p <= progress]  # the end is drawn on_train_end
        if reached:  # one picture, however many points this step passed
            self.pending = self.pending[len(reached) :]
            self._save(trainer, pl_module, progress)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.pending and self.images is not None:
            self.pending.clear()
            self._save(trainer, pl_module, pl_module.training_progress())

    def _save(self, trainer, pl_module, progress: float) -> None:
        if not trainer.is_global_zero:
            return
        masking = pl_module.model.masking
        image = self.images.to(pl_module.device)
        x, _, grid = pl_module.model.prepare_input(image)  # what the masking sees in training (token band order)
        order = pl_module.model.encoder.band_order.tolist()
        rgb = [order.index(band) for band in self.rgb]  # the composite's input bands, found in token order
        with torch.no_grad():
            fig = saliency_masking_figure(masking, x, grid, [progress], rgb, self.seed)
        name = f"saliency_progress{round(100 * progress):03d}_step{trainer.global_step:06d}.png"
        self.saved.append(save_figure(fig, _output_dir(trainer, self.subdir, self.out_dir) / name))


class SeedAugmentations(pl.Callback):
    """Seeds the datamodule's albumentations from torch's seed, so same-seed runs augment alike.

    TerraTorch builds its ``albumentations.Compose`` with no seed, and albumentations ignores
    ``seed_everything``: without this, two runs of one config with ``seed_everything: 0`` differ,
    and all data loader workers draw the same augmentations. At ``setup`` every ``Compose``
    reachable from the datamodule is seeded from ``torch.initial_seed()`` and the rank; data
    loaders with workers get a ``worker_init_fn`` that seeds each worker's copy from the worker's
    torch seed (after Lightning's own per-worker seeding). See :mod:`terratorch_specmae.seeding`
    for what is and is not reproduced.
    """

    LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader")

    def setup(self, trainer, pl_module, stage: str) -> None:
        datamodule = trainer.datamodule
        if datamodule is None:
            return
        rank = trainer.global_rank
        seed_composes(datamodule, process_seed(rank))
        for name in self.LOADERS:  # wrap the instance's loader hooks: Lightning calls them after setup
            hook = getattr(datamodule, name, None)
            if hook is None or getattr(hook, "seeds_augmentations", False):
                continue

            def seeded(hook=hook):
                return seed_loader_workers(hook(), rank)

            seeded.seeds_augmentations = True
            setattr(datamodule, name, seeded)


class TiledPrediction(pl.Callback):
    """Predicts with TerraTorch's ``tiled_inference`` at predict time, whatever the checkpoint says.

    ``--model.init_args.tiled_inference_parameters=…`` next to ``--ckpt_path`` does nothing:
    LightningCLI re-applies the checkpoint's saved hyper-parameters (the fit run's, usually
    ``None``) over the command line. A callback is not part of those, so this one sets the task's
    ``tiled_inference_parameters`` when prediction starts::

        terratorch predict -c fit.yaml --ckpt_path last.ckpt \\
          --trainer.callbacks+=terratorch_specmae.callbacks.TiledPrediction \\
          --trainer.callbacks.init_args.crop=64 --trainer.callbacks.init_args.stride=48

    ``crop`` / ``stride`` are square; ``h_crop``, ``w_crop``, ``h_stride``, ``w_stride`` override
    one side. The other arguments are ``tiled_inference``'s; the task's own ``predict_step`` does
    the tiling.
    """

    def __init__(
        self,
        crop: int = 224,
        stride: int = 192,
        h_crop: int | None = None,
        w_crop: int | None = None,
        h_stride: int | None = None,
        w_stride: int | None = None,
        delta: int = 8,
        average_patches: bool = True,
        blend_overlaps: bool = True,
        batch_size: int = 16,
        padding: str | bool = "reflect",
    ):
        sides = {
            "h_crop": crop if h_crop is None else h_crop, "w_crop": crop if w_crop is None else w_crop,
            "h_stride": stride if h_stride is None else h_stride, "w_stride": stride if w_stride is None else w_stride,
        }  # fmt: skip
        for name, value in sides.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TiledPrediction: {name} must be a positive number of pixels, got {value!r}.")
        for side in ("h", "w"):
            if sides[f"{side}_stride"] > sides[f"{side}_crop"]:
                raise ValueError(
                    f"TiledPrediction: {side}_stride ({sides[f'{side}_stride']}) must not exceed {side}_crop "
                    f"({sides[f'{side}_crop']}), or pixels between tiles would never be predicted."
                )
        if batch_size < 1:
            raise ValueError(f"TiledPrediction: batch_size must be at least 1, got {batch_size!r}.")
        self.parameters = {
            **sides, "delta": delta, "average_patches": average_patches, "blend_overlaps": blend_overlaps,
            "batch_size": batch_size, "padding": padding,
        }  # fmt: skip

    def on_predict_start(self, trainer, pl_module) -> None:
        if not hasattr(pl_module, "tiled_inference_parameters"):
            raise TypeError(
                "TiledPrediction needs a TerraTorch task whose predict_step tiles "
                f"(one with tiled_inference_parameters, e.g. SemanticSegmentationTask), got {type(pl_module).__name__}."
            )
        pl_module.tiled_inference_parameters = dict(self.parameters)


class ClassMapWriter(pl.Callback):
    """Assembles per-pixel predictions into a class map of the whole scene, as a GeoTIFF and a PNG.

    For datamodules whose predict batches carry each sample's ``row`` and ``col`` in the scene
    and that expose the scene's ``shape`` and ``profile`` (``crs``, ``transform``), such as
    :class:`~terratorch_specmae.datamodules.hsi_pixels.HSIPixelDataModule`, with
    :class:`~terratorch_specmae.tasks.PixelClassificationTask`. Writes ``<out_dir>/<name>.tif``
    (uint8 classes 0…K−1, 255 where nothing was predicted, the input's georeference) and
    ``<name>.png``; ``out_dir`` defaults to ``terratorch predict``'s ``--predict_output_dir``.
    Both are written under a temporary name and renamed into place, so an earlier map is replaced
    only by a complete one.
    """

    NODATA = 255

    def __init__(self, out_dir: str | None = None, name: str = "class_map", class_names: Sequence[str] | None = None):
        self.out_dir, self.name = out_dir, name
        self.class_names = list(class_names) if class_names else None
        self.written: list[Path] = []

    def on_predict_start(self, trainer, pl_module) -> None:
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "shape") or not hasattr(dm, "profile"):
            raise ValueError(
                "ClassMapWriter needs a datamodule that exposes the scene's shape and profile "
                f"(e.g. HSIPixelDataModule), got {type(dm).__name__}."
            )
        self.map = torch.full(tuple(dm.shape), self.NODATA, dtype=torch.uint8)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        classes = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        self.map[batch["row"].cpu(), batch["col"].cpu()] = classes.cpu().to(torch.uint8)

    def on_predict_end(self, trainer, pl_module) -> None:
        import rasterio

        out = Path(self.out_dir or getattr(trainer, "predict_output_dir", None) or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        profile = trainer.datamodule.profile
        data = self.map.numpy()
        path = out / f"{self.name}.tif"
        with atomic_path(path) as tmp, rasterio.open(
            tmp, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1, dtype="uint8",
            crs=profile["crs"], transform=profile["transform"], nodata=self.NODATA, compress="deflate",
        ) as dst:  # fmt: skip
            dst.write(data, 1)
        fig = class_map_figure(data, self.NODATA, self.class_names)
        self.written = [path, save_figure(fig, out / f"{self.name}.png")]


def _class_maps(prediction) -> torch.Tensor | None:
    """The class maps in a segmentation task's ``predict_step`` output: ``(outputs, filenames)``,
    where outputs is a tensor, ``(tensor, "pred")`` or a list of ``(tensor, suffix)`` pairs
    (TerraTorch's ``output_on_inference``)."""
    outputs = prediction[0] if isinstance(prediction, tuple) else prediction
    if isinstance(outputs, torch.Tensor):
        return outputs
    pairs = [outputs] if isinstance(outputs, tuple) else list(outputs)
    for tensor, suffix in pairs:
        if suffix == "pred":
            return tensor
    return None


class SceneWriter(BasePredictionWriter):
    """Writes the class map of a scene predicted tile by tile, as each batch arrives.

    For :class:`~terratorch_specmae.datamodules.SceneTilesDataModule` with a segmentation task
    (``SemanticSegmentationTask`` or our ``SegmentationTask``, change detection included). Each
    tile's kept window goes straight to disk, so memory does not grow with the scene, into a
    temporary file beside ``<out_dir>/<scene stem>_pred.tif`` that is renamed onto that name once
    every tile is in (uint8 classes, 255 where an input band has no data, the scene's CRS and
    transform). An interrupted prediction removes the temporary (a killed one leaves a hidden
    ``.<name>.<pid>.<random>.tmp``) and never touches a map written before.
    ``<scene stem>_pred.png`` is drawn from a decimated read (≤ ``png_size`` px).
    ``out_dir`` defaults to ``terratorch predict``'s ``--predict_output_dir``.

    The map and its picture are one unit: both are written under temporary names and created
    together at the end. A prediction is created, never replaced: a map or picture of that name
    already there is an error at the start, and one that appears while this run predicts (another
    run into the same folder) is left as it is while this run fails (its own map is not kept). So
    no folder ever holds a map of one run and a picture of another. ``overwrite: true`` replaces
    an earlier map and picture instead.
    """

    NODATA = 255

    def __init__(
        self,
        out_dir: str | None = None,
        class_names: Sequence[str] | None = None,
        png_size: int = 1024,
        overwrite: bool = False,
    ):
        super().__init__(write_interval="batch")
        self.out_dir, self.png_size, self.overwrite = out_dir, png_size, overwrite
        self.class_names = list(class_names) if class_names else None
        self.written: list[Path] = []
        self.dst = None
        self.pending: PendingFile | None = None

    def on_predict_start(self, trainer, pl_module) -> None:
        import rasterio

        dm = trainer.datamodule
        if self.class_names is None:
            self.class_names = getattr(pl_module, "hparams", {}).get("class_names")
        if dm is None or not hasattr(dm, "tiles") or not hasattr(dm, "dataset"):
            raise ValueError(f"SceneWriter needs SceneTilesDataModule (tiles of one scene), got {type(dm).__name__}.")
        out = Path(self.out_dir or getattr(trainer, "predict_output_dir", None) or trainer.default_root_dir)
        self.path = out / f"{dm.scene.stem}_pred.tif"
        existing = [p for p in (self.path, self.path.with_suffix(".png")) if p.exists()]
        if existing and not self.overwrite:
            raise FileExistsError(
                f"{', '.join(map(str, existing))} already there: a prediction is created, never replaced. Predict into "
                "another --predict_output_dir, or set SceneWriter's overwrite: true to replace the map and its picture."
            )
        self.pending = PendingFile(self.path)  # filled under a temporary name; renamed onto the map at the end
        p = dm.profile
        block = {"tiled": True, "blockxsize": 256, "blockysize": 256} if min(p["height"], p["width"]) >= 256 else {}
        self.dst = rasterio.open(
            self.pending.tmp, "w", driver="GTiff", height=p["height"], width=p["width"], count=1, dtype="uint8",
            crs=p["crs"], transform=p["transform"], nodata=self.NODATA, compress="deflate", **block,
        )  # fmt: skip

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        classes = _class_maps(prediction)
        if classes is None or classes.ndim != 3:
            got = "none" if classes is None else tuple(classes.shape)
            raise ValueError(f"SceneWriter expects class maps [B, H, W] from a segmentation task, got {got}.")
        if batch_indices is None or len(batch_indices) != classes.shape[0]:
            raise RuntimeError("SceneWriter needs Lightning's batch indices to place tiles; got none.")
        dm = trainer.datamodule
        if int(classes.max()) >= self.NODATA:
            raise ValueError(f"Class {int(classes.max())} does not fit the uint8 map (255 marks no data).")
        classes = classes.to(torch.uint8).cpu().numpy()
        for k, index in enumerate(batch_indices):
            tile = dm.tiles[index]
            keep = tile.keep
            r0, c0 = keep.row_off - tile.row, keep.col_off - tile.col
            data = classes[k, r0 : r0 + keep.height, c0 : c0 + keep.width].copy()
            data[~dm.dataset.valid(keep)] = self.NODATA
            self.dst.write(data, 1, window=keep)

    def on_exception(self, trainer, pl_module, exception) -> None:
        """An interrupted prediction leaves no partial map: the temporary goes, an earlier map stays."""
        if self.dst is not None:
            self.dst.close()
            self.dst = None
        if self.pending is not None:
            self.pending.discard()
            self.pending = None

    def on_predict_end(self, trainer, pl_module) -> None:
        import rasterio
        from rasterio.enums import Resampling

        self.dst.close()
        self.dst = None
        with rasterio.open(self.pending.tmp) as src:  # the picture is drawn before either file is in place
            scale = max(src.height / self.png_size, src.width / self.png_size, 1)
            shape = (max(round(src.height / scale), 1), max(round(src.width / scale), 1))
            overview = src.read(1, out_shape=shape, resampling=Resampling.nearest)
        picture = PendingFile(self.path.with_suffix(".png"))
        try:
            save_figure(class_map_figure(overview, self.NODATA, self.class_names), picture.tmp, format="png")
            self.pending.commit(exclusive=not self.overwrite)  # the map first: another run's map stops us here
            try:
                picture.commit(exclusive=not self.overwrite)
            except BaseException:
                if not self.overwrite:
                    self.path.unlink()  # our own map, just created: never a map of ours beside another run's picture
                raise
        finally:
            picture.discard()
            self.pending.discard()
            self.pending = None
        self.written = [self.path, picture.path]


#: Third-party deprecation warnings a run prints that no user can act on, ignored while a run with
#: :class:`RunSummary` lasts: (message, category, module that warns). Lightning 2.6 builds
#: ``torch.utils._pytree.LeafSpec()`` for every data loader, which torch 2.10+ deprecates.
QUIET_WARNINGS = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
)


class RunSummary(pl.Callback):
    """Prints what a run achieved when ``fit``, ``validate``, ``test`` or ``predict`` ends, on rank 0.

    A table of the last logged value of every metric, one row per metric and one column per split
    (``train``, ``val``, ``test``), then the best value of each metric a ``ModelCheckpoint``
    monitors, the best and last checkpoints (``validate``/``test``: the checkpoint evaluated), the
    folders our picture callbacks wrote to in this run, the files our scene writers wrote, and the
    log dir. Rich renders it where installed, plain text otherwise; paths are printed whole, on
    lines of their own, so that they can be copied.

    It also keeps the run's output to what a user can act on: TerraTorch's per-class metrics get
    their compute group's update count (:func:`~terratorch_specmae.tasks.metrics.count_group_updates`;
    without it torchmetrics warns "compute before update" every epoch), and the deprecation
    warnings in :data:`QUIET_WARNINGS` are ignored from ``setup`` to the end of the run.
    """

    def __init__(self) -> None:
        self._filters: list[tuple] = []
        self._before: dict[int, tuple[int, int]] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        count_group_updates(pl_module)
        self._before = {id(cb): (id(_files_of(cb)), len(_files_of(cb))) for cb in trainer.callbacks}
        for message, category, module in QUIET_WARNINGS:  # removed again at teardown, whatever ran in between
            warnings.filterwarnings("ignore", message, category, module)
            self._filters.append(warnings.filters[0])

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._unquiet()
        if not trainer.is_global_zero:
            return
        if trainer.progress_bar_callback is not None:  # Rich's bar ends now, not below the summary (it is idempotent)
            trainer.progress_bar_callback.teardown(trainer, pl_module, stage)
        print_summary(*summarize(trainer, getattr(stage, "value", str(stage)), self._before))

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._unquiet()

    def _unquiet(self) -> None:
        for entry in self._filters:
            if entry in warnings.filters:
                warnings.filters.remove(entry)
        self._filters.clear()


_NONE: list = []


def _files_of(callback) -> list[Path]:
    """What one of our callbacks wrote: pictures (``saved``, appended to) or scene maps (``written``, a new list
    at each prediction's end)."""
    return getattr(callback, "saved", None) or getattr(callback, "written", None) or _NONE


def _new_files(callback, before: tuple[int, int] | None) -> list[Path]:
    """The files ``callback`` wrote since ``before`` (the id and length of its list then)."""
    files = _files_of(callback)
    return files[before[1] :] if before is not None and before[0] == id(files) else list(files)


def _log_dir(trainer: pl.Trainer) -> Path:
    """The logger's folder (not ``trainer.log_dir``, a collective: the summary runs on rank 0 alone)."""
    logger = trainer.logger
    return Path(getattr(logger, "log_dir", None) or trainer.default_root_dir)


def _split_and_name(key: str) -> tuple[str, str]:
    """``val/mIoU`` → (``val``, ``mIoU``); ``test/a/mIoU`` → (``test/a``, …); ``…/dataloader_idx_1`` → (``val 1``, …)."""
    key, _, loader = key.partition("/dataloader_idx_")
    split, _, name = key.rpartition("/")
    return f"{split} {loader}".strip() if loader else split, name


def summarize(trainer: pl.Trainer, stage: str, before: dict[int, tuple[int, int]] | None = None):
    """``(title, splits, rows, facts)`` of a run: ``rows`` are (metric, value per split), ``facts``
    (label, text) pairs; ``before`` holds the files each callback had written before the run."""
    table: dict[str, dict[str, str]] = {}
    splits: list[str] = []
    for key, value in trainer.callback_metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        split, name = _split_and_name(key)
        splits += [split] if split not in splits else []
        table.setdefault(name, {})[split] = f"{value:.4g}"
    rows = [(name, [values.get(split, "") for split in splits]) for name, values in table.items()]

    facts: list[tuple[str, str]] = []
    checkpoints = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    if stage == "fit":
        last = []
        for cb in checkpoints:
            if cb.monitor and cb.best_model_path:
                score = cb.best_model_score
                score = f" = {score.item():.4g}" if score is not None else ""
                facts.append((f"best checkpoint ({cb.monitor} {cb.mode}{score})", cb.best_model_path))
            last += [cb.last_model_path] if cb.last_model_path else []
            if not cb.monitor and cb.best_model_path:  # the top-1 checkpoint of no metric: the latest
                last.append(cb.best_model_path)
        facts += [("last checkpoint", path) for path in dict.fromkeys(last)]
    elif trainer.ckpt_path:
        facts.append(("checkpoint", str(trainer.ckpt_path)))
    before = before or {}
    for cb in trainer.callbacks:
        new = _new_files(cb, before.get(id(cb)))
        if hasattr(cb, "saved"):  # picture callbacks: the folders
            facts += [("pictures", str(folder)) for folder in dict.fromkeys(Path(p).parent for p in new)]
        else:
            facts += [("written", str(path)) for path in new]
    facts.append(("log dir", str(_log_dir(trainer))))

    title = f"{stage} summary"
    if stage == "fit":
        epochs = trainer.current_epoch
        title += f": {epochs} epoch{'s' * (epochs != 1)}, {trainer.global_step} steps"
    return title, splits, rows, facts


def _rich_console():
    """Rich's console (the one Lightning prints its result tables to), or ``None`` without Rich."""
    try:
        from rich import get_console
    except ImportError:
        return None
    return get_console()


def print_summary(title: str, splits: list[str], rows: list, facts: list[tuple[str, str]]) -> None:
    """Prints :func:`summarize`'s summary with Rich where installed, as plain text otherwise."""
    console = _rich_console()
    if console is not None:
        from rich.table import Table
        from rich.text import Text

        if rows:
            table = Table(title=title, title_justify="left")
            table.add_column("metric", style="cyan")
            for split in splits:
                table.add_column(split or "value", justify="right", style="magenta")
            for name, values in rows:
                table.add_row(name, *values)
            console.print(table)
        else:
            console.print(Text(title, style="bold"))
        width = max((len(label) for label, _ in facts), default=0)
        for label, text in facts:  # not in a table cell, which would cut a long path across lines
            console.print(Text.assemble((f"{label:<{width}}  ", "cyan"), text), soft_wrap=True)
        return
    lines = [title]
    if rows:
        header = ["metric", *(split or "value" for split in splits)]
        cells = [header, *([name, *values] for name, values in rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for n, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    width = max((len(label) for label, _ in facts), default=0)
    lines += [f"{label:<{width}}  {text}" for label, text in facts]
    print("\n".join(lines), flush=True)
