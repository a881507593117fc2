"""SpectralGPT checkpoints → our S2MAE models, against synthetic checkpoints with the original key names.

The shapes of the real ``SpectralGPT+.pth`` (ViT-B, 128 px, 12 bands, 4-deep 512-wide decoder) are
reproduced exactly; a smaller one with the same names checks the numbers against an independent
implementation of SpectralGPT's forward pass written here from its published description.
"""

import argparse
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from published_files import spectralgpt_shapes

from terratorch_specmae.cli import main as weights_cli
from terratorch_specmae.models import SpectralMAE, SpectralViT
from terratorch_specmae.weights.converters import convert_spectralgpt


def spectralgpt_state(width=768, depth=12, decoder_width=512, decoder_depth=4, side=16, t=3, p=8, groups=4, mlp=4):
    """A SpectralGPT pretraining state dict: original key names, shapes as given (defaults: SpectralGPT+); the
    names and shapes are ``published_files.spectralgpt_shapes``', the values drawn at a scale that keeps the
    forward pass well conditioned (norms near 1, block weights ~ 1/√fan-in, position tables small)."""
    shapes = spectralgpt_shapes(side, width, depth, t, p, groups, decoder_width, decoder_depth, mlp)

    def value(name: str, shape: tuple[int, ...]) -> torch.Tensor:
        if "norm" in name and name.endswith(".weight"):
            return 1 + torch.randn(shape) * 0.05
        if "pos_embed" in name or name == "mask_token":
            return torch.randn(shape) * 0.02
        if "blocks." in name and len(shape) == 2:  # q, k, v, proj, fc1, fc2
            return torch.randn(shape) / math.sqrt(shape[1])
        return torch.randn(shape) * 0.05

    return {name: value(name, shape) for name, shape in shapes.items()}


def write_checkpoint(path, state):
    """As SpectralGPT's training script saves it: model, optimizer, epoch, scaler and argparse args."""
    args = argparse.Namespace(model="mae_vit_base_patch8_128", input_size=128, mask_ratio=0.9, epochs=200)
    torch.save({"model": state, "optimizer": {}, "epoch": 199, "scaler": {}, "args": args}, path)
    return path


def reference_encoder(state, x, heads, eps=1e-6):
    """SpectralGPT's encoder forward pass (no masking): cube tokens (group, row, col), spatial table tiled
    over groups plus spectral table repeated over cells, pre-norm blocks with separate q/k/v, final norm."""
    w = state["patch_embed.proj.weight"]
    t, p = w.shape[2], w.shape[3]
    tokens = F.conv3d(x[:, None], w, state["patch_embed.proj.bias"], stride=(t, p, p))  # [B, D, G, h, w]
    b, d, g, h, wd = tokens.shape
    tokens = tokens.flatten(3).permute(0, 2, 3, 1)  # [B, G, h·w, D]
    tokens = tokens + state["pos_embed_spatial"][:, None] + state["pos_embed_temporal"][:, :, None]
    x = tokens.reshape(b, g * h * wd, d)
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    for i in range(depth):
        s = {k[len(f"blocks.{i}.") :]: v for k, v in state.items() if k.startswith(f"blocks.{i}.")}
        y = F.layer_norm(x, (d,), s["norm1.weight"], s["norm1.bias"], eps)
        q, k, v = (F.linear(y, s[f"attn.{n}.weight"], s[f"attn.{n}.bias"]).reshape(b, -1, heads, d // heads).transpose(1, 2) for n in "qkv")
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1) @ v
        x = x + F.linear(attn.transpose(1, 2).reshape(b, -1, d), s["attn.proj.weight"], s["attn.proj.bias"])
        y = F.layer_norm(x, (d,), s["norm2.weight"], s["norm2.bias"], eps)
        x = x + F.linear(F.gelu(F.linear(y, s["mlp.fc1.weight"], s["mlp.fc1.bias"])), s["mlp.fc2.weight"], s["mlp.fc2.bias"])
    return F.layer_norm(x, (d,), state["norm.weight"], state["norm.bias"], eps)


def test_spectralgpt_plus_shapes_convert_to_s2mae_vit_base(tmp_path):
    state = spectralgpt_state()
    path = write_checkpoint(tmp_path / "SpectralGPT+.pth", state)
    mae = convert_spectralgpt(path, mae=True)
    assert isinstance(mae, SpectralMAE) and mae.encoder.img_size == (128, 128) and mae.encoder.embed_dim == 768
    assert len(mae.encoder.blocks) == 12 and mae.encoder.blocks[0].attn.num_heads == 12
    assert mae.encoder.bands == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
    ours = mae.state_dict()
    # per block, q/k/v weight+bias (6) became qkv weight+bias (2); our encoder adds its band_order (identity)
    assert len(ours) == len(state) - 2 * 2 * 16 + 1
    assert ours["encoder.band_order"].tolist() == list(range(12))
    assert torch.equal(ours["encoder.tokenizer.proj.weight"], state["patch_embed.proj.weight"])
    assert torch.equal(ours["encoder.pos_embed.spectral"], state["pos_embed_temporal"])
    assert torch.equal(ours["decoder.pos_embed.spatial"], state["decoder_pos_embed_spatial"])
    assert torch.equal(ours["decoder.mask_token"], state["mask_token"])
    assert torch.equal(ours["decoder.pred.weight"], state["decoder_pred.weight"])
    for prefix, theirs in (("encoder.blocks.7", "blocks.7"), ("decoder.blocks.3", "decoder_blocks.3")):
        qkv = torch.cat([state[f"{theirs}.attn.{n}.weight"] for n in "qkv"])
        assert torch.equal(ours[f"{prefix}.attn.qkv.weight"], qkv)
        assert torch.equal(ours[f"{prefix}.attn.qkv.bias"], torch.cat([state[f"{theirs}.attn.{n}.bias"] for n in "qkv"]))
        assert torch.equal(ours[f"{prefix}.mlp.fc1.weight"], state[f"{theirs}.mlp.fc1.weight"])
    encoder = convert_spectralgpt(path)
    assert isinstance(encoder, SpectralViT) and torch.equal(encoder.norm.weight, state["norm.weight"])
    assert "SpectralGPT+.pth" in encoder.pretrained_cfg.source and encoder.pretrained_cfg.img_size == [128, 128]


def test_converted_encoder_computes_what_spectralgpt_computes(tmp_path, true_fp32):
    state = spectralgpt_state(width=64, depth=2, decoder_width=32, decoder_depth=1, side=4)
    path = write_checkpoint(tmp_path / "small.pth", state)
    encoder = convert_spectralgpt(path, num_heads=4)
    x = torch.randn(2, 12, 32, 32)
    ours = encoder.forward_blocks(encoder.embed(x)[0], [encoder.depth - 1])[0]
    with torch.no_grad():
        assert torch.allclose(ours, reference_encoder(state, x, heads=4), atol=1e-5)


def test_command_writes_a_loadable_folder_and_bad_files_are_clear_errors(tmp_path, capsys):
    state = spectralgpt_state(width=64, depth=2, decoder_width=32, decoder_depth=1, side=4)
    path = write_checkpoint(tmp_path / "small.pth", state)
    weights_cli(["convert-spectralgpt", str(path), str(tmp_path / "out"), "--mae", "--num-heads", "4"])
    assert "SpectralMAE (12 bands) written to" in capsys.readouterr().out
    loaded = SpectralMAE.from_pretrained(tmp_path / "out")
    assert torch.equal(loaded.decoder.pos_embed.spectral, state["decoder_pos_embed_temporal"])
    assert "converted from the SpectralGPT checkpoint small.pth" in (tmp_path / "out" / "README.md").read_text()
    # a Landsat model from the converted folder: bands fitted by name and standard key
    landsat = SpectralViT.from_pretrained(tmp_path / "out", bands="landsat7", img_size=64)
    table = state["pos_embed_temporal"][0]  # groups (B01 B02 B03) (B04 B05 B06) (B07 B08 B8A) (B09 B11 B12)
    assert torch.allclose(landsat.pos_embed.spectral[0, 0], (table[0] + table[0] + table[1]) / 3, atol=1e-6)
    assert torch.allclose(landsat.pos_embed.spectral[0, 1], (table[2] + table[3] + table[3]) / 3, atol=1e-6)

    with pytest.raises(ValueError, match="not found"):
        convert_spectralgpt(tmp_path / "absent.pth")
    other = tmp_path / "resnet.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, other)
    with pytest.raises(ValueError, match="is not a SpectralGPT pretraining checkpoint.*conv1.weight"):
        convert_spectralgpt(other)
    extra = tmp_path / "extra.pth"
    write_checkpoint(extra, {**state, "pos_embed_class": torch.zeros(1, 1, 64)})
    with pytest.raises(ValueError, match=r"Unknown SpectralGPT keys .*\['pos_embed_class'\]"):
        convert_spectralgpt(extra)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02 not a pickle")
    with pytest.raises(ValueError, match="Could not read .*corrupt.pth"):
        convert_spectralgpt(corrupt)


@pytest.mark.parametrize(
    "wavelengths",
    [np.linspace(364.0, 1046.0, 144), np.linspace(420.0, 2450.0, 202)],  # Houston 2013 CASI-like; EnMAP-like
    ids=["houston2013_144", "enmap_like_202"],
)
def test_spectralgpt_weights_on_hyperspectral_bands_by_wavelength(tmp_path, wavelengths):
    """A SpectralGPT file (original key names) loaded into an S2MAE model whose bands are an HSI's, given by
    wavelength: the shared cube kernel and the blocks load as they are; each new spectral group's row is
    the mean over its bands of the checkpoint's rows interpolated linearly by wavelength between the two
    nearest Sentinel-2 bands, and a band outside B01…B12 (443–2202 nm) takes the nearest end band's row."""
    from terratorch_specmae.backbones import s2mae_vit_tiny
    from terratorch_specmae.bands import band_info
    from terratorch_specmae.weights.converters.spectralgpt import SPECTRALGPT_BANDS

    state = spectralgpt_state(width=192, depth=2, decoder_width=64, decoder_depth=1, side=2, groups=4)
    path = write_checkpoint(tmp_path / "SpectralGPT.pth", state)
    bands = [f"{round(float(w), 1)}nm" for w in wavelengths]
    with pytest.warns(UserWarning, match=rf"no weights for bands .*\({len(bands)} bands\)"):
        model = s2mae_vit_tiny(bands=bands, img_size=16, depth=2, ckpt_path=str(path))
    assert model.load_report.layout == "spectralgpt" and model.load_report.new_bands == bands
    ours = model.state_dict()
    assert torch.equal(ours["tokenizer.proj.weight"], state["patch_embed.proj.weight"])  # a cube kernel: no band identity
    assert torch.equal(ours["pos_embed.spatial"], state["pos_embed_spatial"])  # 2×2 cells of 8 px either way
    qkv = torch.cat([state[f"blocks.1.attn.{n}.weight"] for n in "qkv"])
    assert torch.equal(ours["blocks.1.attn.qkv.weight"], qkv) and torch.equal(ours["norm.bias"], state["norm.bias"])
    # the expected spectral table, computed here with numpy's interpolation (which clamps at the ends)
    source_nm = np.array([band_info(b).wavelength_nm for b in SPECTRALGPT_BANDS])
    order = np.argsort(source_nm)
    per_source_band = state["pos_embed_temporal"][0, np.arange(12) // 3].double().numpy()  # [12, D]
    target_nm = np.array([float(b[:-2]) for b in bands])
    mixing = np.stack([np.interp(target_nm, source_nm[order], np.eye(12)[order][:, s]) for s in range(12)], axis=1)
    assert np.allclose(mixing.sum(axis=1), 1.0)
    below, above = target_nm < source_nm.min(), target_nm > source_nm.max()
    assert (mixing[below, SPECTRALGPT_BANDS.index("B01")] == 1).all() and (mixing[above, SPECTRALGPT_BANDS.index("B12")] == 1).all()
    per_band = mixing @ per_source_band  # [bands, D]
    groups = -(-len(bands) // 3)
    expected = np.stack([per_band[3 * g : 3 * g + 3].mean(axis=0) for g in range(groups)])
    table = ours["pos_embed.spectral"][0].double().numpy()
    assert table.shape == expected.shape == (groups, 192)
    np.testing.assert_allclose(table, expected, rtol=1e-5, atol=1e-6)
    out = model(torch.randn(2, len(bands), 16, 16))
    assert out[-1].shape[0] == 2 and torch.isfinite(out[-1]).all()
