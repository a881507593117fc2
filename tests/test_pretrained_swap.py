"""A stock TerraTorch Prithvi config fine-tunes our backbone from published pretrained weights after two edits.

``tests/data/prithvi_burnscars.yaml`` is written as TerraTorch's Prithvi tutorials write their
configs (the burn-scars tutorial's keys: ``backbone_pretrained: true``, ``backbone_img_size: 512``,
``backbone_coords_encoding: []``, HLS band names, a 24-block ``SelectIndices``, UNet decoder,
16-mixed precision …). The two edits: the backbone name, and one callback line that imports the
plugin. The weights come from a Hub stand-in serving a file laid out as the published SSL4EO-S12
ViT-L encoder, at the revision TorchGeo pins.
"""

from __future__ import annotations

import difflib
import io

import pytest
import torch
from cli_runner import ROOT, only, terratorch_process
from data.burn_scars.data import make_burn_scars
from hub_server import LocalHub
from published_files import ssl4eo_bytes
from terratorch.models import EncoderDecoderFactory

from terratorch_specmae.weights import PRETRAINED_CFGS

CONFIG = ROOT / "tests/data/prithvi_burnscars.yaml"
PLUGIN_LINE = "    - class_path: terratorch_specmae.callbacks.PredictionPNGs"
HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def two_edits(text: str, backbone: str) -> str:
    """The Prithvi config with its backbone renamed and the plugin line added, and nothing else changed."""
    edited = text.replace("      backbone: prithvi_eo_v2_300\n", f"      backbone: {backbone}\n")
    edited = edited.replace("  callbacks:\n", "  callbacks:\n" + PLUGIN_LINE + "\n")
    changed = [
        line for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]  # fmt: skip
    assert sorted(changed) == sorted(["-      backbone: prithvi_eo_v2_300", f"+      backbone: {backbone}", "+" + PLUGIN_LINE])
    return edited


@pytest.mark.slow
def test_the_prithvi_tutorial_config_fine_tunes_our_backbone_from_pretrained_weights_after_two_edits(
    tmp_path, memory_heavy
):
    make_burn_scars(tmp_path, size=128)
    cfg = PRETRAINED_CFGS["sigmae_vit_large"]["ssl4eo_s12_mae"]  # what backbone_pretrained: true loads for it
    published = ssl4eo_bytes("large")
    (tmp_path / "config.yaml").write_text(two_edits(CONFIG.read_text(), "sigmae_vit_large"))
    with LocalHub() as hub:
        hub.publish(cfg.hf_hub_id, {cfg.filename: published}, commit=cfg.revision)
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
        terratorch_process("fit", "-c", "config.yaml", cwd=tmp_path, env=env)
        assert [path.rsplit("/", 1)[-1] for path in hub.downloads()] == [cfg.filename]
    ckpt = torch.load(only((tmp_path / "output/burnscars/checkpoints").glob("best-*.ckpt")), weights_only=True)
    state, source = ckpt["state_dict"], torch.load(io.BytesIO(published), weights_only=True)
    # it fine-tuned from the published weights: one AdamW step at lr 1e-4 moves a weight by about 1e-4,
    # where a fresh initialisation would differ by ~0.05
    for ours, theirs in (("blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.weight"),
                         ("blocks.23.mlp.fc2.weight", "blocks.23.mlp.fc2.weight"), ("norm.weight", "norm.weight")):  # fmt: skip
        assert (state[f"model.encoder.{ours}"] - source[theirs]).abs().max() < 3e-4, ours
    # the HLS bands took their Sentinel-2 bands' kernel slices: B02, B03, B04, B8A, B11, B12 of the 13 L1C bands
    kernel = state["model.encoder.tokenizer.proj.weight"][:, 0]
    for i, band in enumerate((1, 2, 3, 8, 11, 12)):
        assert (kernel[:, i] - source["patch_embed.proj.weight"][:, band]).abs().max() < 3e-4, HLS[i]
    assert state["model.encoder.pos_embed.spatial"].shape == (1, 32 * 32, 1024)  # 14×14 resampled to 512 px / 16
    assert list((tmp_path / "output/burnscars").rglob("predictions/*.png"))  # the plugin line's pictures


def test_the_prithvi_tutorial_keys_are_accepted_and_a_24_block_list_on_12_blocks_is_named(tmp_path):
    """The same config's model with backbone_pretrained off (no download): sigmae_vit_large builds with every
    Prithvi key as written; the 12-block base size fails with the depth and valid indices named."""
    import yaml

    args = yaml.safe_load(CONFIG.read_text())["model"]["init_args"]["model_args"]
    args = {**args, "backbone": "sigmae_vit_large", "backbone_pretrained": False}
    model = EncoderDecoderFactory().build_model("segmentation", **args)
    assert model.encoder.depth == 24 and model.encoder.img_size == (512, 512) and list(model.encoder.bands) == HLS
    with pytest.raises(IndexError, match=r"Index 17 is out of range for this 12-block encoder.* 0–11 or -12–-1.*\[2, 5, 8, 11\]"):
        EncoderDecoderFactory().build_model("segmentation", **{**args, "backbone": "sigmae_vit_base"})
    with pytest.raises(ValueError, match=r"backbone_coords_encoding: \[\"time\", \"location\"\] .*is a Prithvi option that "
                       r"sigmae_vit_large cannot honour .*Remove it, or set it to \[\] or null"):  # fmt: skip
        EncoderDecoderFactory().build_model("segmentation", **{**args, "backbone_coords_encoding": ["time", "location"]})
    for key, value, neutral in (("vpt", True, "false"), ("encoder_only", False, "true"), ("vit_adapter", True, "false"),
                                ("coords_scale_learn", True, "false"), ("vpt_n_tokens", 4, "null or 0")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"backbone_{key}: .* cannot honour .*set it to {neutral}\."):
            EncoderDecoderFactory().build_model("segmentation", **{**args, f"backbone_{key}": value})
    neutral = {"backbone_vpt": False, "backbone_encoder_only": True, "backbone_coords_scale_learn": False,
               "backbone_vpt_n_tokens": None, "backbone_vpt_dropout": 0.0, "backbone_patch_size": [1, 16, 16]}  # fmt: skip
    assert EncoderDecoderFactory().build_model("segmentation", **{**args, **neutral}).encoder.patch_size == 16


def test_out_channels_name_the_depth_for_any_integer_index():
    import numpy as np

    from terratorch_specmae.models.encoder import BlockIndexError, OutChannels

    channels = OutChannels([8] * 12, list(range(12)), 12)
    assert channels[np.int64(11)] == 8 and channels[-12] == 8 and channels[2:4] == [8, 8]
    with pytest.raises(BlockIndexError, match=r"Index 12 is out of range for this 12-block encoder"):
        channels[np.int64(12)]
    with pytest.raises(IndexError, match=r"0–1 or -2–-1, 0-based\. A list"):  # no four-block hint for 2 blocks
        OutChannels([8, 8], [0, 1], 2)[5]
    assert type(channels.copy()) is OutChannels and channels.copy().depth == 12
