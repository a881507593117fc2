"""Weights of one band set / image size loaded into a model of another, checked weight by weight."""

import warnings

import pytest
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

from terratorch_specmae.weights.adaptation import band_mixing
from terratorch_specmae.backbones import build_backbone, build_mae

S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
L7 = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]


def randomised(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


def save(model, path):
    """A bare state dict that records no bands: loading it elsewhere needs pretrained_bands."""
    torch.save(model.state_dict(), path)
    return str(path)


def test_band_mixing_by_name_standard_key_and_wavelength():
    mixing = band_mixing(["SWIR_1", "B08", "B05", "COASTAL_AEROSOL", "VV"], L7)
    assert mixing[0].tolist() == [0, 0, 0, 0, 1, 0]  # same name
    assert mixing[1].tolist() == [0, 0, 0, 1, 0, 0]  # Sentinel-2 B08 is Landsat's NIR_BROAD (both "N")
    share = (704.1 - 665.0) / (842.0 - 665.0)  # B05 lies between RED and NIR_BROAD
    assert mixing[2, 2].item() == pytest.approx(1 - share) and mixing[2, 3].item() == pytest.approx(share)
    assert mixing[2].sum().item() == pytest.approx(1.0)
    assert mixing[3].tolist() == [1, 0, 0, 0, 0, 0]  # 443 nm, below every band: the nearest (BLUE)
    assert mixing[4].tolist() == [0] * 6  # SAR has no wavelength: zero
    assert band_mixing(["B05"], L7, "zero").sum() == 0
    with pytest.raises(ValueError, match="Band 'B05' is not among the checkpoint's bands"):
        band_mixing(["B05"], L7, "error")


def test_2d_patch_kernel_follows_the_bands(tmp_path):
    source = randomised(build_backbone("tiny", "sigmae", bands=L7, img_size=32, patch_size=8))
    path = save(source, tmp_path / "sigmae.pt")
    kernel = source.tokenizer.proj.weight  # [D, 1, 6, 8, 8]: one slice per band
    with pytest.warns(UserWarning, match=r"no weights for bands \['B05'\]: initialised"):
        target = build_backbone(
            "tiny", "sigmae", bands=["SWIR_1", "BLUE", "B05"], img_size=32, patch_size=8, ckpt_path=path, pretrained_bands=L7
        )
    new = target.tokenizer.proj.weight
    assert new.shape == (192, 1, 3, 8, 8)
    assert torch.equal(new[:, :, 0], kernel[:, :, 4]) and torch.equal(new[:, :, 1], kernel[:, :, 0])
    share = (704.1 - 665.0) / (842.0 - 665.0)
    assert torch.allclose(new[:, :, 2], (1 - share) * kernel[:, :, 2] + share * kernel[:, :, 3], atol=1e-6)
    for key, value in source.state_dict().items():  # everything else is the checkpoint's
        if key not in ("tokenizer.proj.weight", "band_order"):
            assert torch.equal(target.state_dict()[key], value), key
    zero = build_backbone(
        "tiny", "sigmae", bands=["SWIR_1", "BLUE", "B05"], img_size=32, patch_size=8,
        ckpt_path=path, pretrained_bands=L7, new_band_init="zero",
    )  # fmt: skip
    assert torch.count_nonzero(zero.tokenizer.proj.weight[:, :, 2]) == 0
    assert any("B05" in note for note in target.load_report.adapted)


def test_cube_spectral_table_follows_the_bands(tmp_path):
    source = randomised(build_backbone("tiny", "s2mae", bands=S2, img_size=32))
    path = save(source, tmp_path / "s2.pt")
    table = source.pos_embed.spectral[0]  # 4 groups: (B01 B02 B03) (B04 B05 B06) (B07 B08 B8A) (B09 B11 B12)
    target = build_backbone(
        "tiny", "s2mae", bands=["B04", "B03", "B02", "B08", "B11", "B12"], img_size=32, ckpt_path=path, pretrained_bands=S2
    )
    new = target.pos_embed.spectral[0]
    assert torch.allclose(new[0], (table[1] + table[0] + table[0]) / 3, atol=1e-6)
    assert torch.allclose(new[1], (table[2] + table[3] + table[3]) / 3, atol=1e-6)
    # the cube kernel is shared by every group: it loads as it is
    assert torch.equal(target.tokenizer.proj.weight, source.tokenizer.proj.weight)
    assert torch.equal(target.blocks[5].mlp.fc2.weight, source.blocks[5].mlp.fc2.weight)
    # the same band set in another order is not mixed: weights load as they are, the input is reordered
    reordered = build_backbone("tiny", "s2mae", bands=S2[3:6] + S2[:3] + S2[6:], img_size=32, ckpt_path=path, pretrained_bands=S2)
    assert torch.equal(reordered.pos_embed.spectral, source.pos_embed.spectral)
    assert reordered.token_bands == tuple(S2)


@pytest.mark.parametrize("family", ["s2mae", "sigmae"])  # cube tokens and 2D patches
def test_bands_in_another_order_give_the_checkpoints_features_exactly(tmp_path, family):
    """EuroSAT keeps B8A last: a model whose bands are the checkpoint's in another order gives the
    checkpoint model's features on correspondingly reordered input — to the last bit."""
    source = randomised(build_backbone("tiny", family, bands=S2, img_size=32, patch_size=8)).eval()
    path = save(source, tmp_path / "s2.pt")
    eurosat = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B11", "B12", "B8A"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no new bands, nothing mixed
        target = build_backbone("tiny", family, bands=eurosat, img_size=32, patch_size=8, ckpt_path=path,
                                pretrained_bands=S2).eval()
    assert any("checkpoint's order" in note for note in target.load_report.adapted)
    x = torch.randn(2, 12, 32, 32)
    permuted = x[:, [S2.index(b) for b in eurosat]]  # the same pixels, in EuroSAT's band order
    with torch.no_grad():
        for ours, theirs in zip(target(permuted), source(x), strict=True):
            assert torch.equal(ours, theirs)
    # the order is saved with the weights: reloading the fine-tuned encoder anywhere keeps it right
    again = save(target, tmp_path / "eurosat.pt")
    back = build_backbone("tiny", family, bands=S2, img_size=32, patch_size=8, ckpt_path=again, pretrained_bands=eurosat).eval()
    assert back.token_bands == tuple(S2) and not back._reordered
    with torch.no_grad():
        assert torch.equal(back(x)[-1], source(x)[-1])
    state = target.state_dict()  # a model of the same bands loads the state as saved
    plain = build_backbone("tiny", family, bands=eurosat, img_size=32, patch_size=8).eval()
    plain.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(plain(permuted)[-1], source(x)[-1])


def test_mae_with_bands_in_another_order_reconstructs_in_the_inputs_order(tmp_path):
    source = randomised(build_mae("tiny", "s2mae", bands=L7, img_size=32, decoder_embed_dim=32, decoder_depth=1,
                                  decoder_num_heads=2, masking="random")).eval()
    path = save(source, tmp_path / "mae.pt")
    order = [3, 0, 1, 2, 5, 4]
    target = build_mae("tiny", "s2mae", bands=[L7[i] for i in order], img_size=32, decoder_embed_dim=32,
                       decoder_depth=1, decoder_num_heads=2, masking="random", ckpt_path=path, pretrained_bands=L7).eval()
    x = torch.rand(2, 6, 32, 32) * 100
    with torch.no_grad():
        ours = target(x[:, order], generator=torch.Generator().manual_seed(0))
        theirs = source(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours.loss["loss"], theirs.loss["loss"])
    assert torch.equal(ours.mask, theirs.mask[:, order])
    torch.testing.assert_close(ours.pred, theirs.pred[:, order])


def test_saliency_masking_follows_a_reordered_checkpoint(tmp_path):
    """Indices are found by band name in the order the tokenizer sees the bands, and statistics
    given in the input's order are permuted alike."""
    args = {"img_size": 32, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2, "masking": "saliency"}
    source = randomised(build_mae("tiny", "s2mae", bands=L7, **args)).eval()
    path = save(source, tmp_path / "mae.pt")
    order = [5, 4, 3, 2, 1, 0]
    means, stds = [60.0, 61.0, 62.0, 63.0, 64.0, 65.0], [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    target = build_mae("tiny", "s2mae", bands=[L7[i] for i in order], ckpt_path=path, pretrained_bands=L7, **args).eval()
    target.set_masking_normalization([means[i] for i in order], [stds[i] for i in order])
    source.set_masking_normalization(means, stds)
    x = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        ours = target(x[:, order], generator=torch.Generator().manual_seed(0), progress=1.0)
        theirs = source(x, generator=torch.Generator().manual_seed(0), progress=1.0)
    assert target.masking.means == means and target.masking.indices.bands == tuple(L7)
    assert torch.equal(ours.mask, theirs.mask[:, order])


def test_new_band_group_takes_the_mean_of_its_sourced_bands(tmp_path):
    source = randomised(build_backbone("tiny", "s2mae", bands=L7, img_size=32))
    path = save(source, tmp_path / "l7.pt")
    table = source.pos_embed.spectral[0]
    # group 2 = (B08 → NIR_BROAD in group 1, VV → no source): VV does not dilute it
    target = build_backbone("tiny", "s2mae", bands=["B02", "B03", "B04", "B08", "VV"], img_size=32, ckpt_path=path, pretrained_bands=L7)
    assert torch.allclose(target.pos_embed.spectral[0, 0], table[0], atol=1e-6)
    assert torch.allclose(target.pos_embed.spectral[0, 1], table[1], atol=1e-6)


@pytest.mark.parametrize(("pretrained_size", "size"), [(128, 64), (64, 128)])
def test_spatial_table_resamples_to_another_image_size(tmp_path, pretrained_size, size):
    source = randomised(build_backbone("tiny", "s2mae", bands=L7, img_size=pretrained_size))
    path = save(source, tmp_path / "enc.pt")
    target = build_backbone("tiny", "s2mae", bands=L7, img_size=size, ckpt_path=path, pretrained_img_size=pretrained_size)
    old, new = pretrained_size // 8, size // 8
    expected = resample_abs_pos_embed(source.pos_embed.spatial, new_size=[new, new], old_size=[old, old], num_prefix_tokens=0)
    assert target.pos_embed.spatial.shape == (1, new * new, 192)
    assert torch.allclose(target.pos_embed.spatial, expected)
    features = target(torch.randn(2, 6, size, size))
    assert features[-1].shape == (2, new * new, 2 * 192)
    # the grid of a square table is found without being told
    assert torch.equal(build_backbone("tiny", "s2mae", bands=L7, img_size=size, ckpt_path=path).pos_embed.spatial, target.pos_embed.spatial)
    fresh = build_backbone("tiny", "s2mae", bands=L7, img_size=size)
    reinit = build_backbone("tiny", "s2mae", bands=L7, img_size=size, ckpt_path=path, resize_pos_embed="reinit")
    assert torch.equal(reinit.pos_embed.spatial, fresh.pos_embed.spatial)  # the fresh (sin-cos) initialisation


def test_bands_a_bare_state_dict_does_not_name_are_a_clear_error(tmp_path):
    path = save(build_backbone("tiny", "s2mae", bands=L7, img_size=32), tmp_path / "enc.pt")
    with pytest.raises(ValueError, match="does not record its bands.*pass pretrained_bands"):
        build_backbone("tiny", "s2mae", bands=S2, img_size=32, ckpt_path=path)
    with pytest.raises(ValueError, match=r"6 band names .* do not fit the checkpoint, whose weights hold 4 spectral group\(s\) of 3 bands \(12 bands\)"):
        build_backbone("tiny", "s2mae", bands=L7, img_size=32, ckpt_path=save(build_backbone("tiny", "s2mae", bands=S2, img_size=32), tmp_path / "s2.pt"), pretrained_bands=L7)
    with pytest.raises(ValueError, match="Band 'B05' is not among the checkpoint's bands"):
        build_backbone("tiny", "s2mae", bands=["B02", "B03", "B05"], img_size=32, ckpt_path=path, pretrained_bands=L7, new_band_init="error")
    with pytest.raises(ValueError, match="Unknown band name 'NIR'"):
        build_backbone("tiny", "s2mae", bands=L7, img_size=32, ckpt_path=path, pretrained_bands=["NIR"])


def test_safetensors_metadata_names_the_bands(tmp_path):
    source = randomised(build_backbone("tiny", "sigmae", bands=L7, img_size=32, patch_size=8))
    source.save_pretrained(tmp_path / "folder")
    lone = tmp_path / "folder" / "model.safetensors"  # the file alone, without config.json
    target = build_backbone("tiny", "sigmae", bands=["RED", "GREEN", "BLUE"], img_size=32, patch_size=8, ckpt_path=str(lone))
    assert torch.equal(target.tokenizer.proj.weight, source.tokenizer.proj.weight[:, :, [2, 1, 0]])


def test_unexpected_keys_warn_and_a_missing_decoder_stays_fresh(tmp_path):
    source = randomised(build_backbone("tiny", "s2mae", bands=L7, img_size=32))
    state = {**source.state_dict(), "blocks.0.attn.extra": torch.zeros(3)}
    save_file(state, tmp_path / "extra.safetensors")
    with pytest.warns(UserWarning, match=r"1 keys this model does not use: \['blocks.0.attn.extra'\]"):
        build_backbone("tiny", "s2mae", bands=L7, img_size=32, ckpt_path=str(tmp_path / "extra.safetensors"))
    # an MAE from an encoder's weights: the encoder loads, the decoder is fresh and says so
    with pytest.warns(UserWarning, match=r"no weights for \['decoder'\]: left as initialised"):
        mae = build_mae("tiny", "s2mae", bands=L7, img_size=32, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2,
                        ckpt_path=save(source, tmp_path / "enc.pt"))  # fmt: skip
    assert torch.equal(mae.encoder.blocks[2].attn.qkv.weight, source.blocks[2].attn.qkv.weight)
    assert mae.load_report.fresh == ["decoder"] and mae.load_report.prefixes == {"encoder": ""}


def test_mae_decoder_follows_bands_and_size(tmp_path):
    """Continued pretraining (another band set and size): encoder and decoder both load and fit."""
    args = {"decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2, "decoder_pos_embed": "learnable", "masking": "random"}
    source = randomised(build_mae("tiny", "sigmae", bands=L7, img_size=64, patch_size=8, **args))
    path = save(source, tmp_path / "mae.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing unexpected, nothing left fresh
        target = build_mae("tiny", "sigmae", bands=["NIR_BROAD", "RED"], img_size=32, patch_size=8, ckpt_path=path,
                           pretrained_bands=L7, pretrained_img_size=64, **args)  # fmt: skip
    pred = source.decoder.pred.weight.reshape(6, 64, 32)  # rows: band-major blocks of 8×8 pixels
    assert torch.equal(target.decoder.pred.weight.reshape(2, 64, 32), pred[[3, 2]])
    assert torch.equal(target.decoder.pred.bias.reshape(2, 64), source.decoder.pred.bias.reshape(6, 64)[[3, 2]])
    expected = resample_abs_pos_embed(source.decoder.pos_embed.spatial, new_size=[4, 4], old_size=[8, 8], num_prefix_tokens=0)
    assert torch.allclose(target.decoder.pos_embed.spatial, expected)
    assert torch.equal(target.decoder.blocks[0].attn.qkv.weight, source.decoder.blocks[0].attn.qkv.weight)
    loss = target(torch.randn(2, 2, 32, 32)).loss["loss"]
    assert torch.isfinite(loss)


def test_our_sentinel2_encoder_on_hyperspectral_bands_by_wavelength(tmp_path):
    """One of our Sentinel-2 S2MAE encoders (a save_pretrained folder) into a model of 120 HSI bands given by
    wavelength (400–2500 nm): the rule of SpectralGPT's files (tests/test_spectralgpt.py), row for row."""
    import numpy as np

    from terratorch_specmae.bands import band_info

    source = randomised(build_backbone("tiny", "s2mae", bands=S2, img_size=32, depth=2))
    source.save_pretrained(tmp_path / "s2")
    wavelengths = np.linspace(400.0, 2500.0, 120)
    bands = [f"{round(float(w), 1)}nm" for w in wavelengths]
    with pytest.warns(UserWarning, match=r"no weights for bands .*\(120 bands\)"):
        target = build_backbone("tiny", "s2mae", bands=bands, img_size=32, depth=2, ckpt_path=str(tmp_path / "s2"))
    assert torch.equal(target.tokenizer.proj.weight, source.tokenizer.proj.weight)
    assert torch.equal(target.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)
    nm = np.array([band_info(b).wavelength_nm for b in S2])
    order = np.argsort(nm)
    named = np.array([float(b[:-2]) for b in bands])  # the names' wavelengths (0.1 nm)
    mixing = np.stack([np.interp(named, nm[order], np.eye(12)[order][:, s]) for s in range(12)], axis=1)
    per_band = mixing @ source.pos_embed.spectral[0, np.arange(12) // 3].detach().double().numpy()
    expected = np.stack([per_band[g : g + 3].mean(axis=0) for g in range(0, 120, 3)])
    np.testing.assert_allclose(target.pos_embed.spectral[0].detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)
