"""Saliency pictures: the training callback and the example script on the real Landsat scene."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from cli_runner import run_script
from PIL import Image
from torch.utils.data import DataLoader

from terratorch_specmae.callbacks import SaliencyMaskPNGs
from terratorch_specmae.tasks import SpectralMAETask

ROOT = Path(__file__).resolve().parents[1]
LANDSAT = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"image": torch.rand(6, 32, 32, generator=torch.Generator().manual_seed(i)) * 200 + 1}


def _task(masking="saliency"):
    return SpectralMAETask(model_args={
        "model": "sigmae_vit_tiny_mae", "bands": LANDSAT, "img_size": 32, "patch_size": 8, "depth": 1,
        "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2, "masking": masking,
    })


def _fit(task, callback, tmp_path, max_steps=4):
    trainer = pl.Trainer(max_steps=max_steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path)
    loader = DataLoader(_Images(), batch_size=4)
    trainer.fit(task, train_dataloaders=loader, val_dataloaders=loader)


def test_callback_saves_start_middle_and_end_of_the_curriculum(tmp_path):
    callback = SaliencyMaskPNGs(at=(0.0, 0.5, 1.0), num_samples=2, out_dir=str(tmp_path / "pngs"))
    _fit(_task(), callback, tmp_path)
    names = [p.name for p in callback.saved]
    assert names == [
        "saliency_progress000_step000000.png",
        "saliency_progress050_step000002.png",
        "saliency_progress100_step000004.png",
    ]
    for path in callback.saved:
        assert path.parent == tmp_path / "pngs" / "saliency"
        width, height = Image.open(path).size
        assert width > 2 * height  # one row per sample, 1 + 3 indices + saliency + mask panels
    # the samples are the first validation images, kept for every picture
    torch.testing.assert_close(callback.images, torch.stack([_Images()[i]["image"] for i in range(2)]))


def test_callback_refuses_a_model_without_saliency_masking(tmp_path):
    with pytest.raises(ValueError, match="model's masking is RandomMasking"):
        _fit(_task("random"), SaliencyMaskPNGs(), tmp_path, max_steps=1)
    with pytest.raises(ValueError, match=r"at must be progress points in \[0, 1\]"):
        SaliencyMaskPNGs(at=(0.5, 2.0))


@pytest.mark.slow
def test_example_script_on_the_landsat_scene(tmp_path):
    """examples/saliency_masking.py, run as __main__ in this process (the model alone, no terratorch run)."""
    out = tmp_path / "saliency.png"
    stdout = run_script(ROOT / "examples/saliency_masking.py", "--out", str(out), cwd=tmp_path)
    assert "scene (6, 256, 349), 1408 patches of 8 px" in stdout
    lines = [line for line in stdout.splitlines() if line.startswith("progress")]
    assert len(lines) == 3
    # as γ grows the hidden tokens get more salient than the visible ones
    gaps = [float(line.split("hidden tokens ")[1].split(",")[0]) - float(line.split("visible tokens ")[1]) for line in lines]
    assert abs(gaps[0]) < 0.05 and gaps[0] < gaps[1] < gaps[2] and gaps[2] > 0.1
    assert Image.open(out).size[0] > 1000
