"""``configs/finetune_from_spectralgpt.yaml`` and ``configs/finetune_from_ssl4eo_s12.yaml`` end to end.

Each config runs as shipped (one short epoch on a fake EuroSAT in TorchGeo's layout, no download),
its weights fetched through the catalogue from the stand-ins of ``test_pretrained_catalogue.py``
(files laid out as the published ones). The fine-tuned encoder must start from those weights, and
the datamodule must scale the input as the weights expect.
"""

from __future__ import annotations

import argparse
import io

import pytest
import torch
from cli_runner import only, run_cli
from data.eurosat.data import make_eurosat
from test_pretrained_catalogue import published  # noqa: F401 (the Hub and Zenodo stand-ins, a fixture)

from terratorch_specmae.datamodules import EuroSATBenchmarkDataModule
from terratorch_specmae.weights import PRETRAINED_CFGS, cache_dir
from terratorch_specmae.weights.converters import spectralgpt_state_to_ours

QUICK = ("--trainer.max_epochs=1", "--trainer.max_steps=1", "--trainer.limit_val_batches=2",
         "--trainer.precision=32", "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
         "--data.init_args.download=false")  # fmt: skip


def _fit(config: str, root, out) -> dict:
    run_cli("fit", "-c", config, *QUICK, f"--data.init_args.root={root}", f"--trainer.default_root_dir={out}")
    return torch.load(only(out.rglob("last.ckpt")), weights_only=True)["state_dict"]


@pytest.mark.slow
def test_finetune_from_spectralgpt_starts_from_spectralgpt_plus(published, tmp_path, memory_heavy):  # noqa: F811
    _, zenodo = published
    state = _fit("configs/finetune_from_spectralgpt.yaml", make_eurosat(tmp_path / "eurosat"), tmp_path / "run")
    record = PRETRAINED_CFGS["s2mae_vit_base"]["spectralgpt_plus"]
    with torch.serialization.safe_globals([argparse.Namespace]):  # the args SpectralGPT's script saves
        raw = torch.load(io.BytesIO(zenodo.records[record.zenodo_record][record.filename]), weights_only=True)
    source = spectralgpt_state_to_ours(raw["model"])
    for key in ("blocks.0.attn.qkv.weight", "blocks.11.mlp.fc2.weight", "pos_embed.spectral", "tokenizer.proj.weight"):
        step = (state[f"model.encoder.{key}"] - source[f"encoder.{key}"]).abs().max()
        assert step < 2e-4, key  # one AdamW step at lr 5e-5 from the published weights
    assert (cache_dir() / "converted" / f"zenodo-{record.zenodo_record}" / "SpectralGPT+.safetensors").is_file()


@pytest.mark.slow
def test_finetune_from_ssl4eo_s12_starts_from_the_ssl4eo_mae_encoder(published, tmp_path, memory_heavy):  # noqa: F811
    hub, _ = published
    state = _fit("configs/finetune_from_ssl4eo_s12.yaml", make_eurosat(tmp_path / "eurosat"), tmp_path / "run")
    cfg = PRETRAINED_CFGS["sigmae_vit_base"]["ssl4eo_s12_mae"]
    source = torch.load(io.BytesIO(hub.repos[cfg.hf_hub_id][cfg.revision][cfg.filename]), weights_only=True)
    assert (state["model.encoder.tokenizer.proj.weight"][:, 0] - source["patch_embed.proj.weight"]).abs().max() < 2e-4
    assert (state["model.encoder.pos_embed.spatial"] - source["pos_embed"][:, 1:]).abs().max() < 2e-4  # 224 px: as is
    assert (state["model.encoder.blocks.11.attn.proj.weight"] - source["blocks.11.attn.proj.weight"]).abs().max() < 2e-4


def test_eurosat_scales_inputs_as_the_weights_expect(tmp_path):
    root = make_eurosat(tmp_path / "eurosat")
    bands = ["B02", "B03", "B04"]
    minmax = EuroSATBenchmarkDataModule(root=str(root), bands=bands, img_size=64, batch_size=4,
                                        normalization="minmax_per_image")  # fmt: skip
    divided = EuroSATBenchmarkDataModule(root=str(root), bands=bands, img_size=64, batch_size=4, means=[0, 0, 0],
                                         stds=[10000, 10000, 10000])  # fmt: skip
    minmax.setup("fit")
    raw = next(iter(minmax.train_dataloader()))
    image = raw["image"].float()
    scaled = minmax.on_after_batch_transfer({**raw, "image": raw["image"].clone()}, 0)["image"]
    flat = scaled.flatten(2)
    # flips move pixels, not values: every image's every band spans exactly [0, 1]
    torch.testing.assert_close(flat.amin(-1), torch.zeros_like(flat[..., 0]))
    torch.testing.assert_close(flat.amax(-1), torch.ones_like(flat[..., 0]), atol=1e-6, rtol=0)
    divided.setup("fit")
    out = divided.aug({**raw, "image": image.clone()})["image"]
    torch.testing.assert_close(out, image / 10000)
    with pytest.raises(ValueError, match="minmax_per_image scales each image on its own; means/stds do not apply"):
        EuroSATBenchmarkDataModule(root=str(root), bands=bands, normalization="minmax_per_image", means=[0] * 3, stds=[1] * 3)
    with pytest.raises(ValueError, match=r"EuroSAT stds have 2 values for the 3 bands"):
        EuroSATBenchmarkDataModule(root=str(root), bands=bands, means=[0] * 3, stds=[1, 1])
    with pytest.raises(ValueError, match=r"normalization must be one of \('dataset', 'minmax_per_image'\), got 'minmax'"):
        EuroSATBenchmarkDataModule(root=str(root), bands=bands, normalization="minmax")
