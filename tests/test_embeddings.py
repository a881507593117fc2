"""``configs/specmae_embeddings.yaml``: TerraTorch's ``EmbeddingGenerationTask`` on our backbone (slow: CLI runs).

Each run writes one GeoTIFF per chip and layer; the tests read them back and check them against the
chip (CRS, extent, token grid) and against our encoder called directly on the same chip.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from cli_runner import ROOT, run_cli
from rasterio.transform import Affine

CONFIG = ROOT / "configs" / "specmae_embeddings.yaml"
CHIPS = sorted((ROOT / "examples" / "data" / "olinda_l7" / "val" / "images").glob("*.tif"))[:3]


def _task_and_georeference_missing() -> str | None:
    """Why this TerraTorch cannot run the config, or None (both supported versions can: 1.2.11 and 1.2.13)."""
    try:
        from terratorch.datamodules import GenericNonGeoSegmentationDataModule
        from terratorch.tasks import EmbeddingGenerationTask  # noqa: F401
    except ImportError as error:
        return f"this TerraTorch has no EmbeddingGenerationTask ({error})"
    if "return_georeference" not in inspect.signature(GenericNonGeoSegmentationDataModule).parameters:
        return "this TerraTorch's GenericNonGeoSegmentationDataModule cannot return the chips' georeference"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_task_and_georeference_missing() is not None, reason=str(_task_and_georeference_missing())),
]


def _generate(tmp_path: Path, *overrides: str):
    """Run the config on three example chips (batches of 2: a full and a partial one); return (CLI, output dir)."""
    chips, out = tmp_path / "chips", tmp_path / "embeddings"
    chips.mkdir()
    for chip in CHIPS:
        shutil.copy(chip, chips / chip.name)
    cli = run_cli(
        "predict", "-c", str(CONFIG),
        f"--data.init_args.predict_data_root={chips}", "--data.init_args.batch_size=2",
        f"--model.init_args.output_dir={out}", f"--predict_output_dir={out}", f"--trainer.default_root_dir={out}",
        *overrides,
    )  # fmt: skip
    return cli, out


def _direct(cli, chip: Path) -> list[torch.Tensor]:
    """Our encoder, built from the registry and given the run's weights, on the chip normalised as the config says."""
    from terratorch.registry import BACKBONE_REGISTRY

    config = yaml.safe_load(CONFIG.read_text())
    data, model_args = config["data"]["init_args"], config["model"]["init_args"]["model_args"]
    encoder = BACKBONE_REGISTRY.build(
        model_args["backbone"], bands=model_args["backbone_bands"], img_size=model_args["backbone_img_size"],
        patch_size=model_args["backbone_patch_size"], fold=model_args["backbone_fold"],
    )  # fmt: skip
    encoder.load_state_dict(cli.model.model.encoder.state_dict())
    with rasterio.open(chip) as src:
        pixels = torch.from_numpy(src.read().astype(np.float32))
    means, stds = torch.tensor(data["means"]).view(-1, 1, 1), torch.tensor(data["stds"]).view(-1, 1, 1)
    with torch.no_grad():
        return encoder.eval()(((pixels - means) / stds)[None])


def _assert_georeferenced_like(embedding, src) -> None:
    """Same CRS; the chip's extent on the embedding's grid, up to TerraTorch's float32 rounding of coordinates."""
    assert embedding.crs == src.crs
    expected = src.transform @ Affine.scale(src.width / embedding.width, src.height / embedding.height)
    # TerraTorch's extract_georeference carries the geotransform as float32: a coordinate moves by at most
    # half a float32 step (0.25 m on these chips, 0.5 m at most for UTM coordinates); allow one step
    for got, want in zip(embedding.transform[:6], expected[:6], strict=True):
        assert abs(got - want) <= np.spacing(np.float32(abs(want))), (embedding.transform, expected)
    for got, want in zip(embedding.bounds, src.bounds, strict=True):
        assert abs(got - want) <= np.spacing(np.float32(abs(want))), (embedding.bounds, src.bounds)


def test_token_embeddings_are_the_encoder_on_each_chip_in_the_chips_georeference(tmp_path, true_fp32):
    cli, out = _generate(tmp_path, "--model.init_args.layers=[2, -1]")
    encoder = cli.model.model.encoder
    dim, grid = encoder.out_channels[0], 64 // encoder.patch_size  # 384 channels (2 groups × 192), 8 × 8 tokens
    assert (dim, grid) == (384, 8)
    summary = json.loads((out / "configuration_summary.json").read_text())
    assert [layer["layer_number"] for layer in summary["layers"]] == [3, 12]

    for chip in CHIPS:
        hidden = _direct(cli, chip)
        for folder, block in (("layer_00", 2), ("layer_01", 11)):
            with rasterio.open(out / folder / f"{chip.stem}_embedding.tif") as emb, rasterio.open(chip) as src:
                assert (emb.count, emb.height, emb.width) == (dim, grid, grid)
                _assert_georeferenced_like(emb, src)
                values = torch.from_numpy(emb.read())
            assert torch.isfinite(values).all()
            tokens = hidden[block][0]  # [64 tokens in row-major order, 384]
            torch.testing.assert_close(values, tokens.T.reshape(dim, grid, grid), rtol=1e-4, atol=1e-4)


def test_mean_pooled_embedding_is_one_vector_per_chip_over_the_whole_chip(tmp_path, true_fp32):
    cli, out = _generate(tmp_path, "--model.init_args.embedding_pooling=mean")
    for chip in CHIPS:
        with rasterio.open(out / "layer_00" / f"{chip.stem}_embedding.tif") as emb, rasterio.open(chip) as src:
            assert (emb.count, emb.height, emb.width) == (384, 1, 1)
            _assert_georeferenced_like(emb, src)
            values = torch.from_numpy(emb.read())
        assert torch.isfinite(values).all()
        torch.testing.assert_close(values[:, 0, 0], _direct(cli, chip)[-1][0].mean(0), rtol=1e-4, atol=1e-4)
