"""Bad inputs are clear errors or correct results, one table row per case.

Each :class:`Row` names its entry point (``"API"`` here; ``"YAML"`` and ``"CLI"`` rows go in the
same tables), the case, a ``call`` that builds or invokes the thing (it gets a temporary folder)
and either the exception it must raise with a ``match`` regex on the message, or a ``check`` of
the correct result ``call`` returns. ``ERROR_ROWS`` and ``RESULT_ROWS`` feed one test each.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY
from tiny import TINY_DECODER, TINY_ENCODER, TINY_SSMAE

from terratorch_specmae.backbones import build_backbone
from terratorch_specmae.bands import resolve_bands
from terratorch_specmae.cli import export_checkpoint
from terratorch_specmae.cli import main as weights_main
from terratorch_specmae.datamodules import (
    BigEarthNetBenchmarkDataModule,
    EuroSATBenchmarkDataModule,
    MultiLabelChipDataModule,
    OSCDBenchmarkDataModule,
    SceneTilesDataModule,
)
from terratorch_specmae.indices import SpectralIndices
from terratorch_specmae.layers.tokenizer import CubeTokenizer
from terratorch_specmae.masking import build_masking, token_saliency
from terratorch_specmae.models import SSMAE, SpectralMAE, SpectralViT, SSMAEEncoder, unpatchify
from terratorch_specmae.weights import resolve_weights

ENTRIES = ("API", "YAML", "CLI")
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@dataclass(frozen=True)
class Row:
    entry: str  # "API" | "YAML" | "CLI": how the input reaches the code
    case: str  # the bad input, in words (with ``entry`` the test id)
    call: Callable[[Path], object]  # builds / invokes the thing; gets a temporary folder
    raises: type[BaseException] | None = None  # the exception expected, or None for a correct result
    match: str | None = None  # regex the message must contain (with ``raises``)
    check: Callable[[object], None] | None = None  # asserts on what ``call`` returned (without ``raises``)

    def __post_init__(self) -> None:
        assert self.entry in ENTRIES, self.entry
        assert (self.raises is None) == (self.check is not None), f"{self.case}: give raises+match or check"

    def param(self):
        return pytest.param(self, id=f"{self.entry}: {self.case}")


# ---------------------------------------------------------------- tiny models and inputs
L7 = resolve_bands("landsat7")  # BLUE GREEN RED NIR_BROAD SWIR_1 SWIR_2
ENC = {**TINY_ENCODER, "img_size": 16, "embed_dim": 32}  # 16 px: a 2×2 grid of 8 px cubes, 2 groups of 3 bands
DEC, SS = TINY_DECODER, TINY_SSMAE
TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2, "img_size": 16}  # overrides of the registered variants
DUPLICATED = ["B02", "B03", "B02"]
DUPLICATE_MSG = r"duplicates \['B02'\] at positions \{'B02': \[0, 2\]\}"
STRATEGIES = ("random", "cube_random", "spatially_consistent", "saliency", "redundant_spectra")


def encoder(**kwargs) -> SpectralViT:
    """A tiny encoder, built as the registries build one: architecture, then weights (``ckpt_path`` …)."""
    return build_backbone("tiny", "s2mae", **{**ENC, **kwargs})


def mae(masking: str = "random", mask_ratio=0.5, enc: dict | None = None, **kwargs) -> SpectralMAE:
    return SpectralMAE(encoder(**(enc or {})), masking=masking, mask_ratio=mask_ratio, **DEC, **kwargs)


def image(*values, shape=(2, 6, 16, 16), where=((0, 2, 1, 1), (1, 4, 3, 2), (1, 0, 4, 4))) -> torch.Tensor:
    """A random batch with ``values`` put at the pixels ``where`` (RED, SWIR_1, BLUE of landsat7)."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    for value, at in zip(values, where):
        x[at] = value
    return x


INF, NAN = float("inf"), float("nan")


def zero_std_band() -> torch.Tensor:
    """An image standardised with a std of 0 for its constant band 3 (NIR_BROAD): (x − mean) / 0 = NaN there."""
    x = torch.rand(2, 6, 16, 16, dtype=torch.float64) * 3000
    x[:, 3] = 1234.0
    means, stds = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    return ((x - means[:, None, None]) / stds[:, None, None]).float()


def same_in_float32(make):
    """``(output of float32 input, output of the same values as float64)`` of one model."""
    model = make().eval()
    x = torch.rand(2, 6, 16, 16, dtype=torch.float64) * 3000
    torch.manual_seed(0)
    a = model(x.float())
    torch.manual_seed(0)
    return a, model(x)


def check_same_output(pair) -> None:
    a, b = pair
    a, b = (a.pred, b.pred) if hasattr(a, "pred") else (a[0], b[0])
    assert b.dtype == torch.float32 and torch.equal(a, b)


def seeded(model, x):
    return model(x, generator=torch.Generator().manual_seed(0))


def same_as_nan(make, *values, shape=(2, 6, 16, 16)):
    """``(output on values, output on NaN at the same pixels)`` of one ``nan_policy="fill"`` model."""
    model = make()
    return seeded(model, image(*values, shape=shape)), seeded(model, image(*[NAN] * len(values), shape=shape))


def finite(*tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def check_like_nan(pair) -> None:
    """Invalid values are treated exactly like NaN, and the output is finite."""
    got, reference = pair
    if isinstance(got, list):  # backbone features
        assert finite(*got) and all(torch.equal(a, b) for a, b in zip(got, reference))
        return
    assert finite(got.pred, got.loss["loss"], got.loss["baseline_loss"])
    assert torch.equal(got.pred, reference.pred) and torch.equal(got.loss["loss"], reference.loss["loss"])


def train_step(model, x):
    return model.train()(x, generator=torch.Generator().manual_seed(0))


def one_token_mae(mask_ratio: float) -> SpectralMAE:
    """An MAE whose 8×8 image is a single 2D patch token: no ratio below 1 can mask it."""
    return mae(mask_ratio=mask_ratio, enc={"img_size": 8, "spectral_patch_size": None})


# ---------------------------------------------------------------- raster files
def write_tif(path: Path, data: np.ndarray, nodata=None, descriptions=None) -> Path:
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
               "dtype": data.dtype.name, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


MEANS, STDS = [10.0, 20.0], [2.0, 4.0]


def chip_sample(tmp: Path, data: np.ndarray, nodata=None, tag=None) -> torch.Tensor:
    """The normalised image of a one-chip MultiLabelChipDataModule (file nodata tag ``tag``, option ``nodata``)."""
    write_tif(tmp / "chip.tif", data, nodata=tag)
    with (tmp / "labels.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["filename", "water"], ["chip.tif", 1]])
    dm = MultiLabelChipDataModule(str(tmp), str(tmp / "labels.csv"), str(tmp), str(tmp / "labels.csv"), MEANS, STDS,
                                  flips=False, nodata=nodata)
    dm.setup("fit")
    return dm.datasets["val"][0]["image"]


def chip(dtype, fill) -> np.ndarray:
    data = np.stack([np.full((4, 4), 12, dtype), np.full((4, 4), 28, dtype)])
    data[1, 2, 3] = fill
    return data


def check_chip_missing_is_band_mean(image: torch.Tensor) -> None:
    expected = torch.stack([torch.full((4, 4), 1.0), torch.full((4, 4), 2.0)])
    expected[1, 2, 3] = 0.0  # the band mean: 0 after normalisation, as SceneTilesDataModule does
    assert finite(image) and torch.equal(image, expected)


def scene(tmp: Path, descriptions) -> str:
    return str(write_tif(tmp / "scene.tif", np.ones((len(descriptions), 16, 16), np.float32), descriptions=descriptions))


def bare_checkpoint(tmp: Path) -> str:
    torch.save(encoder().state_dict(), tmp / "encoder.pt")
    return str(tmp / "encoder.pt")


class Payload:
    """A pickle that would run code when loaded: torch.load(weights_only=True) must refuse it."""

    def __reduce__(self):
        return (print, ("this ran while loading a checkpoint",))


def file_with(tmp: Path, name: str, data: bytes) -> str:
    (tmp / name).write_bytes(data)
    return str(tmp / name)


def truncated_checkpoint(tmp: Path) -> str:
    data = Path(bare_checkpoint(tmp)).read_bytes()
    return file_with(tmp, "truncated.pt", data[: len(data) // 2])


def payload_checkpoint(tmp: Path) -> str:
    torch.save({"tokenizer.proj.weight": torch.zeros(1), "extra": Payload()}, tmp / "payload.pt")
    return str(tmp / "payload.pt")


def weights_folder(tmp: Path, config: str | None = None) -> str:
    encoder().save_pretrained(tmp / "weights")
    if config is not None:
        (tmp / "weights" / "config.json").write_text(config)
    return str(tmp / "weights")


def pretraining_checkpoint(tmp: Path) -> str:
    """A checkpoint as SpectralMAETask writes it (what ``specmae-weights export`` takes)."""
    args = {"model": "s2mae_vit_tiny_mae", **ENC, **DEC}
    model = FULL_MODEL_REGISTRY.build(args["model"], **{k: v for k, v in args.items() if k != "model"})
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"model_args": args}, "epoch": 0, "global_step": 1}, tmp / "pre.ckpt")
    return str(tmp / "pre.ckpt")


def cli_user_error(argv: list[str]):
    """``specmae-weights *argv`` in this process; a user error's exit status and its one line on standard error
    come back as ``SystemExit("<status>: <line>")``."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            weights_main(argv)
    except SystemExit as exit_:
        raise SystemExit(f"{exit_.code}: {err.getvalue().splitlines()[-1]}") from None


def export_into_user_folder(tmp: Path, cli: bool):
    out = tmp / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    ckpt = pretraining_checkpoint(tmp)
    if cli:
        return weights_main(["export", ckpt, str(out)])
    return export_checkpoint(ckpt, out)


def from_yaml(text: str, registry=FULL_MODEL_REGISTRY):
    """What TerraTorch does with a config's model_args: build the named model with the other options."""
    args = yaml.safe_load(text)
    return registry.build(args.pop("model"), **args)


def recorded_warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught]


def assert_any(messages: list[str], pattern: str) -> None:
    assert any(re.search(pattern, m) for m in messages), messages


def assert_equal(got, expected) -> None:
    assert got == expected, (got, expected)


def assert_none(messages: list[str], pattern: str) -> None:
    assert not any(re.search(pattern, m) for m in messages), messages


def _loading_rows() -> list[Row]:
    """Checkpoints, weight folders, Hub references, exports."""
    return [
        Row("API", "checkpoint of another width (embed_dim 32 into 64)",
            lambda t: encoder(embed_dim=64, ckpt_path=bare_checkpoint(t)), ValueError,
            r"the checkpoint's encoder width \(embed_dim\) is 32, this model's 64"),
        Row("API", "pretrained_bands with 5 names for a 6-band checkpoint",
            lambda t: encoder(ckpt_path=bare_checkpoint(t), pretrained_bands=L7[:5]), ValueError,
            r"5 band names .* do not fit the checkpoint, whose weights hold 2 spectral group\(s\) of 3 bands \(6 bands\)"),
        Row("API", "a text file as checkpoint", lambda t: encoder(ckpt_path=file_with(t, "notes.pt", b"hello")),
            ValueError, r"Could not read checkpoint '.*notes.pt' \(expected safetensors or a torch state dict\)"),
        Row("API", "a truncated checkpoint", lambda t: encoder(ckpt_path=truncated_checkpoint(t)), ValueError,
            r"Could not read checkpoint '.*truncated.pt'"),
        Row("API", "a checkpoint of another network", lambda t: encoder(ckpt_path=(
            torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7)}, t / "resnet.pt"), str(t / "resnet.pt"))[1]),
            ValueError, r"holds no weights of a SpectralViT .* first keys are: conv1.weight"),
        Row("API", "a checkpoint whose pickle runs code (__reduce__)", lambda t: encoder(ckpt_path=payload_checkpoint(t)),
            ValueError, r"(?s)Could not read checkpoint '.*payload.pt'.*Unsupported global: GLOBAL print"),
        Row("API", "a missing checkpoint file", lambda t: encoder(ckpt_path=str(t / "nope.pt")), ValueError,
            r"Checkpoint file not found: expected a file at '.*nope.pt'"),
        Row("API", "weights folder with a corrupt config.json (ckpt_path)",
            lambda t: encoder(ckpt_path=weights_folder(t, "{not json")), ValueError,
            r"Could not read '.*weights/config.json': expected the JSON config that save_pretrained writes, got invalid JSON"),
        Row("API", "weights folder with a corrupt config.json (from_pretrained)",
            lambda t: SpectralViT.from_pretrained(weights_folder(t, "[1, 2")), ValueError,
            r"Could not read '.*weights/config.json'"),
        Row("API", "from_pretrained: a mistyped local folder", lambda t: (weights_folder(t), SpectralViT.from_pretrained(
            str(t / "weigths")))[1], ValueError,
            r"Could not load '.*weigths': no local folder '.*weigths' \(folders in '.*': \['weights'\]\).*"
            r"expected a save_pretrained folder \(config.json \+ model.safetensors\) or a Hub repo id"),
        Row("API", "from_pretrained: a weights file, not a folder",
            lambda t: SpectralViT.from_pretrained(str(Path(weights_folder(t)) / "model.safetensors")), ValueError,
            r"'.*model.safetensors' is a file; expected a save_pretrained folder.*ckpt_path"),
        Row("API", "hf:// reference with a '..' path segment", lambda t: resolve_weights("hf://org/repo/../../etc/passwd",
            cache_dir=t), ValueError, r"cannot contain a '..' path segment"),
        Row("API", "hf:// reference with '..' as organisation", lambda t: resolve_weights("hf://../etc/passwd", cache_dir=t),
            ValueError, r"Bad Hub reference 'hf://../etc/passwd'.*Expected hf://org/repo"),
        Row("API", "Hub weights offline and not cached", lambda t: resolve_weights(
            "hf://olinda/s2mae-tiny", cache_dir=t, local_files_only=True), ValueError,
            r"Could not get model.safetensors of Hub repo 'olinda/s2mae-tiny' at revision main: not in the local cache"),
        Row("API", "export into a folder with the user's files", lambda t: export_into_user_folder(t, cli=False),
            FileExistsError, r"The output folder '.*mine' is not empty: it holds README.md.*--overwrite"),
        Row("CLI", "specmae-weights export into a folder with the user's files",
            lambda t: export_into_user_folder(t, cli=True), SystemExit, r"^2$"),
        Row("CLI", "specmae-weights export of a fine-tuning-free bare state dict",
            lambda t: cli_user_error(["export", bare_checkpoint(t), str(t / "out")]), SystemExit,
            r"^2: specmae-weights export: error: '.*' is not a pretraining checkpoint of ours: expected the "
            r"hyper-parameters of SpectralMAETask"),
        Row("YAML", "model_args bands with a duplicate", lambda _: from_yaml(
            "model: s2mae_vit_tiny_mae\nbands: [B02, B03, B02]\nimg_size: 16\nspectral_patch_size: 3"),
            ValueError, DUPLICATE_MSG),
        Row("YAML", "model_args mask_ratio not a number ('high')", lambda _: from_yaml(
            "model: sigmae_vit_tiny_mae\nbands: landsat7\nimg_size: 16\nmask_ratio: high"),
            ValueError, r"mask_ratio must be a number in \[0, 1\), got 'high' of type str"),
        Row("YAML", "backbone with an unknown band name", lambda _: from_yaml(
            "model: s2mae_vit_tiny\nbands: [BLUE, GREEN, NIRR]\nimg_size: 16", BACKBONE_REGISTRY),
            ValueError, r"Unknown band name 'NIRR'"),
        Row("YAML", "backbone_pretrained_bands (pretrained_bands) of the wrong length", lambda t: BACKBONE_REGISTRY.build(
            "s2mae_vit_tiny", **{**TINY, "bands": "landsat7", "ckpt_path": pretraining_checkpoint(t),
                                 "pretrained_bands": ["BLUE", "GREEN", "RED"]}), ValueError, r"3 band names .* do not fit the checkpoint"),
    ]


# ---------------------------------------------------------------- rows: errors
def _mask_ratio_rows() -> list[Row]:
    rows = [
        Row("API", f"{name} masking: mask_ratio '0.9' (a string)",
            lambda _, n=name: build_masking(n, bands=L7, mask_ratio="0.9"),
            ValueError, r"mask_ratio must be a number in \[0, 1\), got '0.9' of type str")
        for name in STRATEGIES
    ]
    rows += [
        Row("API", f"random masking: mask_ratio {value!r}", lambda _, v=value: build_masking("random", mask_ratio=v),
            ValueError, message)
        for value, message in (
            (None, r"mask_ratio must be a number in \[0, 1\), got None of type NoneType"),
            (True, r"mask_ratio must be a number in \[0, 1\), got True of type bool"),
            (1.0, r"mask_ratio must be in \[0, 1\), got 1.0"),
            (1, r"mask_ratio must be in \[0, 1\), got 1"),
            (-0.1, r"mask_ratio must be in \[0, 1\), got -0.1"),
            (NAN, r"mask_ratio must be in \[0, 1\), got nan"),
        )
    ]
    rows += [
        Row("API", f"MAE, {name} masking: mask_ratio 0 in training", lambda _, n=name: train_step(mae(n, 0), image()),
            ValueError, rf"mask_ratio=0.0 \({name} masking\) masks none of the 8 tokens of a 16×16 image.*"
            r"training loss is undefined.*Expected a mask_ratio in \(0, 1\)")
        for name in STRATEGIES
    ]
    return rows


ERROR_ROWS = [
    # -- 1. ±inf and absurd magnitudes are invalid like NaN (nan_policy="error")
    Row("API", "encoder: +inf pixel", lambda _: encoder()(image(INF)), ValueError,
        r"Input has 1 invalid values \(1 \+inf\) of 3072, in bands \{'RED': 1\}; expected finite pixels with "
        r"\|x\| <= 1e\+15.*nan_policy='fill'"),
    Row("API", "encoder: -inf pixel", lambda _: encoder()(image(-INF)), ValueError,
        r"Input has 1 invalid values \(1 -inf\) of 3072, in bands \{'RED': 1\}"),
    Row("API", "encoder: 1e30 pixel (nodata sentinel)", lambda _: encoder()(image(1e30)), ValueError,
        r"Input has 1 invalid values \(1 \|x\| > 1e\+15\) of 3072, in bands \{'RED': 1\}"),
    Row("API", "encoder: float32 lowest (-3.4e38) pixel", lambda _: encoder()(image(float(np.finfo(np.float32).min))),
        ValueError, r"Input has 1 invalid values \(1 \|x\| > 1e\+15\)"),
    Row("API", "encoder: NaN, +inf and 1e30 in three bands", lambda _: encoder()(image(NAN, INF, -1e30)), ValueError,
        r"Input has 3 invalid values \(1 NaN, 1 \+inf, 1 \|x\| > 1e\+15\) of 3072, in bands "
        r"\{'BLUE': 1, 'RED': 1, 'SWIR_1': 1\}"),
    Row("API", "encoder: int64 input holding a nodata sentinel",
        lambda _: encoder()(torch.full((1, 6, 16, 16), -(2**62), dtype=torch.int64)), ValueError,
        r"Input has 1536 invalid values \(1536 \|x\| > 1e\+15\) of 1536"),
    Row("API", "encoder: a band divided by a std of 0 (NaN in every pixel)", lambda _: encoder()(zero_std_band()),
        ValueError, r"Input has 512 invalid values \(512 NaN\) of 3072, in bands \{'NIR_BROAD': 512\}.*"
        r"Band\(s\) \['NIR_BROAD'\] are invalid in every pixel: a band the datamodule's normalisation divides by a "
        r"standard deviation of 0.*check the stds given for them, or drop the band\.$"),
    Row("API", "MAE: +inf pixel", lambda _: seeded(mae(), image(INF)), ValueError,
        r"Input has 1 invalid values \(1 \+inf\) of 3072, in bands \{'RED': 1\}"),
    Row("API", "SS-MAE: -inf pixel", lambda _: seeded(SSMAE(**SS), image(-INF, shape=(2, 6, 5, 5))), ValueError,
        r"Input has 1 invalid values \(1 -inf\) of 300, in bands \{'RED': 1\}"),
    Row("API", "SS-MAE encoder: 1e30 pixel",
        lambda _: SSMAEEncoder(**{k: v for k, v in SS.items() if not k.startswith("decoder")})(
            image(1e30, shape=(2, 6, 5, 5))), ValueError, r"Input has 1 invalid values \(1 \|x\| > 1e\+15\)"),
    # -- already handled: NaN, band count, names, sizes, options
    Row("API", "encoder: NaN pixel", lambda _: encoder()(image(NAN)), ValueError,
        r"Input has 1 invalid values \(1 NaN\) of 3072, in bands \{'RED': 1\}"),
    Row("API", "MAE: NaN pixel", lambda _: seeded(mae(), image(NAN)), ValueError,
        r"Input has 1 invalid values \(1 NaN\)"),
    Row("API", "encoder: 4 channels for 6 bands", lambda _: encoder()(torch.randn(1, 4, 16, 16)), ValueError,
        r"Expected 6 bands \['BLUE', 'GREEN', 'RED', 'NIR_BROAD', 'SWIR_1', 'SWIR_2'\], got 4 channels"),
    Row("API", "encoder: unknown band name", lambda _: encoder(bands=["B02", "B99"]), ValueError,
        r"Unknown band name 'B99'. Expected a TerraTorch/HLS name"),
    Row("API", "encoder: unknown sensor preset", lambda _: encoder(bands="sentinel3"), ValueError,
        r"Unknown sensor preset 'sentinel3'"),
    Row("API", "unknown backbone name", lambda _: BACKBONE_REGISTRY.build("s2mae_vit_giant"), ValueError,
        r"Unknown model 's2mae_vit_giant'; expected one of: s2mae_vit_tiny"),
    Row("API", "unknown full model name", lambda _: FULL_MODEL_REGISTRY.build("sigmae_vit_giant_mae"), ValueError,
        r"Unknown model 'sigmae_vit_giant_mae'"),
    Row("API", "unknown masking name", lambda _: mae("checkerboard"), ValueError,
        r"Unknown masking strategy 'checkerboard'; expected one of \['cube_random', 'random'"),
    Row("API", "encoder: image smaller than one patch", lambda _: encoder()(torch.randn(1, 6, 4, 12)), ValueError,
        r"Image 4×12 is smaller than one 8×8 patch"),
    Row("API", "encoder: other size with dynamic_img_size off",
        lambda _: encoder(dynamic_img_size=False)(torch.randn(1, 6, 20, 20)), ValueError,
        r"Expected images of 16×16 pixels, got 20×20"),
    Row("API", "encoder: nan_policy 'zero'", lambda _: encoder(nan_policy="zero"), ValueError,
        r"nan_policy must be one of \('error', 'fill'\), got 'zero'"),
    Row("API", "SS-MAE: nan_policy 'ignore'", lambda _: SSMAE(**SS, nan_policy="ignore"), ValueError,
        r"nan_policy must be one of"),
    # -- 3. duplicated band names, everywhere bands are taken
    Row("API", "resolve_bands: duplicated band", lambda _: resolve_bands(DUPLICATED), ValueError,
        rf"Band names must be unique, got {DUPLICATE_MSG} in \['B02', 'B03', 'B02'\]"),
    Row("API", "encoder: duplicated band", lambda _: encoder(bands=DUPLICATED, spectral_patch_size=1), ValueError,
        DUPLICATE_MSG),
    Row("API", "backbone registry: duplicated band",
        lambda _: BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands=DUPLICATED, **TINY), ValueError, DUPLICATE_MSG),
    Row("API", "full-model registry: duplicated band",
        lambda _: FULL_MODEL_REGISTRY.build("s2mae_vit_tiny_mae", bands=DUPLICATED, **TINY), ValueError,
        DUPLICATE_MSG),
    Row("API", "SS-MAE: duplicated band", lambda _: SSMAE(**{**SS, "bands": DUPLICATED}), ValueError, DUPLICATE_MSG),
    Row("API", "SS-MAE encoder: duplicated band",
        lambda _: SSMAEEncoder(bands=DUPLICATED, window_size=5, embed_dim=32, depth=1, num_heads=2), ValueError,
        DUPLICATE_MSG),
    Row("API", "encoder: duplicated pretrained_bands",
        lambda tmp: encoder(ckpt_path=bare_checkpoint(tmp), pretrained_bands=["BLUE", "GREEN", "BLUE"]), ValueError,
        r"duplicates \['BLUE'\] at positions \{'BLUE': \[0, 2\]\}"),
    Row("API", "redundant_spectra masking: duplicated band",
        lambda _: build_masking("redundant_spectra", bands=DUPLICATED), ValueError, DUPLICATE_MSG),
    Row("API", "saliency masking: duplicated band",
        lambda _: build_masking("saliency", bands=["B03", "B04", "B08", "B11", "B03"]), ValueError,
        r"duplicates \['B03'\] at positions \{'B03': \[0, 4\]\}"),
    Row("API", "SpectralIndices: duplicated band", lambda _: SpectralIndices(["NDVI"], ["B04", "B08", "B04"]),
        ValueError, r"duplicates \['B04'\] at positions \{'B04': \[0, 2\]\}"),
    Row("API", "SceneTilesDataModule: duplicated band",
        lambda tmp: SceneTilesDataModule(scene(tmp, ["B02", "B03"]), crop=16, means=[0] * 3, stds=[1] * 3,
                                         bands=DUPLICATED), ValueError,
        rf"SceneTilesDataModule bands must be unique, got {DUPLICATE_MSG}"),
    Row("API", "SceneTilesDataModule: a std of 0 for one band",
        lambda tmp: SceneTilesDataModule(scene(tmp, ["B02", "B03"]), crop=16, means=[400, 350], stds=[120, 0]),
        ValueError, r"The normalisation of .*scene\.tif has a standard deviation that is not positive for band\(s\) "
        r"B03 \(mean 350, std 0\); expected a positive std per band"),
    Row("API", "SceneTilesDataModule: file describes two bands alike",
        lambda tmp: SceneTilesDataModule(scene(tmp, ["B02", "B03", "B02"]), crop=16, means=[0] * 2, stds=[1] * 2,
                                         bands=["B02", "B03"]), ValueError,
        r"describes several bands alike: duplicates \['B02'\] at file band numbers \{'B02': \[1, 3\]\}"),
    Row("API", "EuroSAT datamodule: duplicated band",
        lambda tmp: EuroSATBenchmarkDataModule(root=str(tmp), bands=DUPLICATED), ValueError,
        rf"EuroSAT bands must be unique, got {DUPLICATE_MSG}"),
    Row("API", "BigEarthNet datamodule: duplicated band",
        lambda tmp: BigEarthNetBenchmarkDataModule(root=str(tmp), bands=DUPLICATED), ValueError,
        rf"BigEarthNet \(Sentinel-2\) bands must be unique, got {DUPLICATE_MSG}"),
    Row("API", "OSCD datamodule: duplicated band",
        lambda tmp: OSCDBenchmarkDataModule(root=str(tmp), bands=DUPLICATED), ValueError,
        rf"OSCD bands must be unique, got {DUPLICATE_MSG}"),
    # -- 4. mask_ratio: numbers in [0, 1) only; 0 (or a mask hiding nothing) refused in training
    *_mask_ratio_rows(),
    *_loading_rows(),
    Row("API", "MAE: mask_ratio '0.9' (a string)", lambda _: mae(mask_ratio="0.9"), ValueError,
        r"mask_ratio must be a number in \[0, 1\), got '0.9' of type str"),
    Row("API", "SS-MAE: spectral_mask_ratio None", lambda _: SSMAE(**SS, spectral_mask_ratio=None), ValueError,
        r"mask_ratio must be a number in \[0, 1\), got None"),
    Row("API", "SS-MAE: spatial_mask_ratio 0 in training",
        lambda _: train_step(SSMAE(**SS, spatial_mask_ratio=0), image(shape=(2, 6, 5, 5))), ValueError,
        r"mask_ratio=0.0 \(random masking\) masks none of the 25 tokens of a 5×5 image"),
    Row("API", "MAE: mask_ratio 0.9 on a one-token image in training",
        lambda _: train_step(one_token_mae(0.9), torch.randn(1, 6, 8, 8)), ValueError,
        r"mask_ratio=0.9 \(random masking\) masks none of the 1 tokens of a 8×8 image"),
    # -- 5. saliency masking needs band names
    Row("API", "MAE: saliency masking on a model built from in_chans",
        lambda _: mae("saliency", enc={"bands": None, "in_chans": 6}), ValueError,
        r"Saliency masking needs band names to compute the spectral indices \['NDVI', 'NDWI', 'NDBI'\], but the "
        r"bands are unnamed \(\['band_0', 'band_1', 'band_2', '…'\]: a model built from in_chans=6 alone\)\. "
        r"NDVI needs N \(Near-Infrared \(NIR\): NIR_BROAD/NIR_NARROW/B08/B8A\), R \(Red: RED/B04\).*"
        r"Build the model with bands=\[…\]"),
    Row("API", "sigmae full model: built from in_chans",
        lambda _: FULL_MODEL_REGISTRY.build("sigmae_vit_tiny_mae", in_chans=4, **TINY), ValueError,
        r"Saliency masking needs band names.*in_chans=4"),
    Row("API", "saliency masking: unnamed bands, other indices",
        lambda _: build_masking("saliency", bands=("band_0", "band_1"), indices=["NDVI", "EVI"]), ValueError,
        r"EVI needs .*B \(Blue: BLUE/B02\)"),
    Row("API", "SpectralIndices: unnamed bands", lambda _: SpectralIndices(["NDWI"], ("band_0", "band_1")),
        ValueError, r"SpectralIndices needs band names.*NDWI needs G \(Green: GREEN/B03\)"),
]


# ---------------------------------------------------------------- rows: correct results
def check_finite_features(out) -> None:
    assert finite(*out)


def check_indices_zero_at_invalid(pair) -> None:
    maps, reference = pair
    assert finite(maps) and torch.equal(maps, reference)
    assert (maps[0, :, 0, 0] == 0).all() and (maps[0, :, 1, 1] == 0).all()


def indices_on(*values):
    """NDVI/NDWI/NDBI of raw values with ``values`` at two pixels of the NIR band, and with NaN there."""
    indices = SpectralIndices(["NDVI", "NDWI", "NDBI"], "landsat7")
    raw = torch.rand(1, 6, 4, 4) + 0.1
    bad, nan = raw.clone(), raw.clone()
    bad[0, 3, 0, 0], bad[0, 3, 1, 1] = values
    nan[0, 3, 0, 0] = nan[0, 3, 1, 1] = NAN
    return indices(bad), indices(nan)


def check_mask(out) -> None:
    mask = out
    assert mask.priority is None or finite(mask.priority)
    assert (mask.mask.sum(dim=1) > 0).all()


def mask_on(name: str, *values):
    grid = CubeTokenizer(6, 8, patch_size=8, spectral_patch_size=3).grid(16, 16)
    masking = build_masking(name, bands=L7, mask_ratio=0.5)
    return masking(grid, 2, torch.device("cpu"), generator=torch.Generator().manual_seed(0), image=image(*values))


def check_saliency_finite(saliency) -> None:
    assert finite(saliency) and saliency.min() >= 0 and saliency.max() <= 1


def check_saliency_first_cell(saliency) -> None:
    assert torch.equal(saliency, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


def check_pixel_mask_unmasked(out) -> None:
    assert finite(out.pred) and (out.mask == 0).all()


def check_padded_sizes(out) -> None:
    features, reconstruction = out
    assert features[0].shape == (1, 9, 64) and finite(*features)  # 3×3 cells (padded to 24 px), 2 groups × 32
    assert reconstruction.pred.shape == reconstruction.mask.shape == (1, 6, 20, 20) and finite(reconstruction.pred)


def check_valid_excluded_from_loss(out) -> None:
    model, result, x = out
    assert finite(result.pred, result.loss["loss"])
    grid = model.encoder.tokenizer.grid(16, 16)
    valid = model.encoder.fill_nan(x)[1]
    weights = unpatchify(model._pixel_weights(valid, grid, x), grid)[:, :6]
    assert torch.equal(weights == 0, ~torch.isfinite(x) | (x.abs() > 1e15))


def excluded_from_loss(*values):
    model = mae(enc={"nan_policy": "fill"})
    x = image(*values)
    return model, seeded(model, x), x


RESULT_ROWS = [
    # -- 1. nan_policy="fill": ±inf and absurd magnitudes are missing exactly like NaN; outputs finite
    Row("API", "encoder fill: +inf, -inf, 1e30 as NaN",
        lambda _: same_as_nan(lambda: encoder(nan_policy="fill"), INF, -INF, 1e30), check=check_like_nan),
    Row("API", "encoder: 1e14 values are data, outputs finite",
        lambda _: encoder()(torch.full((1, 6, 16, 16), 1e14)), check=check_finite_features),
    Row("API", "MAE fill (minmax target): +inf, -3.4e38 as NaN",
        lambda _: same_as_nan(lambda: mae(enc={"nan_policy": "fill"}), INF, -3.4e38), check=check_like_nan),
    Row("API", "MAE fill (standardize target): -inf, 1e30 as NaN",
        lambda _: same_as_nan(lambda: mae(enc={"nan_policy": "fill"}, target_norm="standardize"), -INF, 1e30),
        check=check_like_nan),
    Row("API", "MAE fill: invalid pixels are out of the loss",
        lambda _: excluded_from_loss(INF, -INF, 1e30), check=check_valid_excluded_from_loss),
    Row("API", "MAE fill, saliency masking: +inf, 1e30 as NaN",
        lambda _: same_as_nan(lambda: mae("saliency", enc={"nan_policy": "fill"}), INF, 1e30), check=check_like_nan),
    Row("API", "SS-MAE fill, MRS: +inf, -inf as NaN",
        lambda _: same_as_nan(lambda: SSMAE(**SS, nan_policy="fill", spectral_masking="redundant_spectra"),
                              INF, -INF, shape=(2, 6, 5, 5)), check=check_like_nan),
    Row("API", "spectral indices: +inf, 1e30 raw values give 0 like NaN",
        lambda _: indices_on(INF, 1e30), check=check_indices_zero_at_invalid),
    Row("API", "saliency masking: ±inf in the image, finite priority",
        lambda _: mask_on("saliency", INF, -INF, NAN), check=check_mask),
    Row("API", "redundant_spectra masking: ±inf in the image, finite priority",
        lambda _: mask_on("redundant_spectra", INF, -INF, 1e30), check=check_mask),
    Row("API", "token_saliency: a 1e25 index value, that cell most salient",
        lambda _: token_saliency(torch.ones(1, 1, 4, 4).index_put((torch.tensor([0]),) * 4, torch.tensor(1e25)), 2),
        check=check_saliency_first_cell),
    Row("API", "token_saliency: inf, NaN and 3e38 index values, saliency in [0, 1]",
        lambda _: token_saliency(torch.tensor([1e30, 3e38, INF, NAN]).repeat(1, 2, 4, 1) * torch.rand(1, 2, 4, 4), 2),
        check=check_saliency_finite),
    # -- 2. nodata in MultiLabelChipDataModule files: read like SceneTilesDataModule (band mean, 0 normalised)
    Row("API", "multilabel chips: the file's nodata tag",
        lambda tmp: chip_sample(tmp, chip(np.int16, -9999), tag=-9999), check=check_chip_missing_is_band_mean),
    Row("API", "multilabel chips: the nodata option",
        lambda tmp: chip_sample(tmp, chip(np.uint8, 0), nodata=0), check=check_chip_missing_is_band_mean),
    Row("API", "multilabel chips: NaN in a float file",
        lambda tmp: chip_sample(tmp, chip(np.float32, NAN)), check=check_chip_missing_is_band_mean),
    Row("API", "multilabel chips: +inf in a float file",
        lambda tmp: chip_sample(tmp, chip(np.float32, INF)), check=check_chip_missing_is_band_mean),
    # -- float64 input (numpy's default) is read in the weights' precision, as integer input is
    Row("API", "encoder: float64 input, the float32 result", lambda _: same_in_float32(encoder),
        check=check_same_output),
    Row("API", "MAE: float64 input, the float32 result", lambda _: same_in_float32(mae), check=check_same_output),
    # -- 4. mask_ratio 0 evaluates unmasked
    Row("API", "MAE: mask_ratio 0 in evaluation", lambda _: mae(mask_ratio=0).eval()(image()),
        check=check_pixel_mask_unmasked),
    # -- already handled: image sizes that the patch does not divide are padded
    Row("API", "encoder and MAE: 20×20 image, 8 px patches",
        lambda _: (encoder()(torch.randn(1, 6, 20, 20)), seeded(mae(), torch.randn(1, 6, 20, 20))),
        check=check_padded_sizes),
    # -- loading: a bare state dict records no bands; into non-default bands, the assumption is said
    Row("API", "bare state dict into a model of non-default bands warns that they are assumed",
        lambda t: recorded_warnings(lambda: encoder(ckpt_path=bare_checkpoint(t))),
        check=lambda messages: assert_any(messages, r"does not record its bands; assumed they are this model's "
                                                    r"\['BLUE', .*pass pretrained_bands")),
    Row("API", "bare state dict into the default bands: no band warning",
        lambda t: recorded_warnings(lambda: encoder(**{"bands": None, "spectral_patch_size": 3},
                                                          ckpt_path=(torch.save(SpectralViT(**{**ENC, "bands": None}).state_dict(), t / "s2.pt"), str(t / "s2.pt"))[1])),
        check=lambda messages: assert_none(messages, r"does not record its bands")),
    Row("CLI", "--model_args.mask_ratio=0.75 arrives as the string '0.75': read as the number",
        lambda _: from_yaml("model: sigmae_vit_tiny_mae\nbands: landsat7\nimg_size: 16\nmask_ratio: '0.75'"),
        check=lambda model: assert_equal(model.masking.mask_ratio, 0.75)),
]


@pytest.mark.parametrize("row", [row.param() for row in ERROR_ROWS])
def test_bad_input_is_a_clear_error(row: Row, tmp_path):
    with pytest.raises(row.raises, match=row.match):
        row.call(tmp_path)


@pytest.mark.parametrize("row", [row.param() for row in RESULT_ROWS])
def test_bad_input_gives_the_correct_result(row: Row, tmp_path):
    row.check(row.call(tmp_path))


def test_rows_are_unique():
    ids = [f"{r.entry}: {r.case}" for r in ERROR_ROWS + RESULT_ROWS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    for row in ERROR_ROWS:
        re.compile(row.match)
