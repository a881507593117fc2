"""SS-MAE host model: two branches, summed loss, MRS in the spectral branch, backbone and weights."""

import numpy as np
import pytest
import torch
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY

from terratorch_specmae.datamodules.pixel_patches import pixel_patches
from terratorch_specmae.datamodules.synthetic_hsi import make_scene
from terratorch_specmae.masking import num_visible

SCENE = make_scene(size=48, num_bands=24, seed=1)
BANDS = SCENE.band_names + ["DSM"]


def scene_patches(n, seed=0, size=7):
    """Standardised pixel-centred patches of the generated scene (HSI + DSM), as a datamodule gives them."""
    rng = np.random.default_rng(seed)
    stack = np.concatenate([SCENE.hsi, SCENE.dsm[None]])
    stack = (stack - stack.mean(axis=(1, 2), keepdims=True)) / stack.std(axis=(1, 2), keepdims=True)
    rows, cols = rng.integers(0, 48, n), rng.integers(0, 48, n)
    return torch.from_numpy(pixel_patches(stack.astype(np.float32), rows, cols, size))


def small(**kwargs):
    defaults = {"bands": BANDS, "embed_dim": 32, "num_heads": 4, "decoder_embed_dim": 32, "decoder_num_heads": 4}
    return FULL_MODEL_REGISTRY.build("ssmae_base_mae", **{**defaults, **kwargs})


def test_defaults_follow_ss_mae():
    model = FULL_MODEL_REGISTRY.build("ssmae_base_mae", bands=BANDS)
    for branch in (model.spatial, model.spectral):
        enc = branch.encoder
        assert enc.embed_dim == 256 and enc.depth == 2 and enc.blocks[0].attn.num_heads == 8
        assert len(branch.decoder.blocks) == 2 and branch.masking.mask_ratio == 0.3
        assert enc.pos_embed.kind == "sincos"
    assert model.spatial.encoder.default_grid.num_tokens == 49  # a token per pixel of the 7×7 patch
    assert model.spatial.encoder.default_grid.pixels_per_token == 25  # … over all 25 bands
    assert model.spectral.encoder.default_grid.num_tokens == 25  # a token per band
    assert model.spectral.encoder.default_grid.pixels_per_token == 49  # … over the 7×7 pixels (Linear(P·P → D))
    assert type(model.spectral.masking).__name__ == "RandomMasking"


def test_loss_is_the_sum_of_both_branches_and_mrs_masks_whole_bands():
    model = small(spectral_masking="redundant_spectra")
    x = scene_patches(6)
    seen = {}
    for name in ("spatial", "spectral"):
        getattr(model, name).decoder.blocks[0].register_forward_pre_hook(lambda m, a, n=name: seen.__setitem__(n, a[0].shape[1]))
    out = model(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss["loss"], out.loss["spatial"] + out.loss["spectral"])
    assert seen == {"spatial": 49, "spectral": 25}
    # spectral branch (MRS): a band is masked in all its pixels; exactly 25 − floor(25·0.7) bands
    per_band = out.mask.flatten(2)
    assert torch.equal(per_band, per_band[..., :1].expand_as(per_band))
    assert torch.equal(per_band[..., 0].sum(dim=1), torch.full((6,), float(25 - num_visible(25, 0.3))))
    out.loss["loss"].backward()
    assert model.spatial.encoder.tokenizer.proj.weight.grad.abs().sum() > 0
    assert model.spectral.encoder.tokenizer.proj.weight.grad.abs().sum() > 0


def test_bad_patch_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Expected images of 7×7 pixels, got 9×9"):
        small()(torch.randn(2, 25, 9, 9))


@pytest.mark.parametrize("masking", ["random", "redundant_spectra"])
def test_pretraining_loss_falls_on_the_generated_scene(masking):
    torch.manual_seed(0)
    model = small(spectral_masking=masking)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for step in range(60):
        x = scene_patches(32, seed=step)
        loss = model(x).loss["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.6 * first, (first, last)  # 2.2 → 1.1 (MRS, harder) and lower with random masking


def test_backbone_features_and_weights_from_pretraining(tmp_path):
    model = small()
    path = tmp_path / "pretrain.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    backbone = BACKBONE_REGISTRY.build("ssmae_base", bands=BANDS, embed_dim=32, num_heads=4, ckpt_path=str(path))
    for name in ("spatial", "spectral"):
        for key, value in getattr(backbone, name).state_dict().items():
            assert torch.equal(value, getattr(model, name).encoder.state_dict()[key]), (name, key)
    x = scene_patches(3)
    features = backbone(x)
    assert features[0].shape == (3, 49, 64) and backbone.out_channels == [64]
    maps = backbone.prepare_features_for_image_model(features)
    assert maps[0].shape == (3, 64, 7, 7)
    # the spectral half is the same for every pixel of a patch; the spatial half differs
    assert torch.allclose(maps[0][:, 32:, 0, 0], maps[0][:, 32:, 3, 5])
    assert not torch.allclose(maps[0][:, :32, 0, 0], maps[0][:, :32, 3, 5])
    # a bare state dict does not name its bands: another band set needs them named
    with pytest.raises(ValueError, match="does not record its bands.*pass pretrained_bands"):
        BACKBONE_REGISTRY.build("ssmae_base", bands=BANDS[:-1], embed_dim=32, num_heads=4, ckpt_path=str(path))
    reordered = [BANDS[2], BANDS[0], BANDS[1]]
    other = BACKBONE_REGISTRY.build(
        "ssmae_base", bands=reordered, embed_dim=32, num_heads=4, ckpt_path=str(path), pretrained_bands=BANDS
    )
    assert other.out_channels == [64]
    # pixel tokens span every band: their kernel slices follow the bands by name
    kernel = model.spatial.encoder.tokenizer.proj.weight
    assert torch.equal(other.spatial.tokenizer.proj.weight, kernel[:, :, [2, 0, 1]])


def test_bands_known_only_by_count_survive_to_encoder():
    """in_chans alone (as the HSI benchmark configs give it) names the bands band_0 …; the pretraining model's
    encoders rebuild from those names, with the same weights."""
    from terratorch_specmae.backbones import ssmae_base_mae

    mae = ssmae_base_mae(in_chans=9, depth=1, embed_dim=32, num_heads=2, decoder_embed_dim=32, decoder_depth=1)
    encoder = mae.to_encoder()
    assert encoder.bands == tuple(f"band_{i}" for i in range(9))
    x = torch.randn(2, 9, 7, 7)
    assert torch.equal(encoder.spectral.tokenizer.proj.weight, mae.spectral.encoder.tokenizer.proj.weight)
    assert encoder(x)[0].shape == (2, 49, 64)
