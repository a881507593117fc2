import pytest
import torch
from terratorch.registry import FULL_MODEL_REGISTRY

from terratorch_specmae.backbones import VIT_SIZES, build_mae
from terratorch_specmae.masking import num_visible
from terratorch_specmae.models import masked_mse, target_statistics


def tiny_mae(**kwargs):
    defaults = {"bands": "landsat7", "img_size": 32, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2}
    return build_mae("tiny", **{**defaults, **kwargs})


@pytest.mark.parametrize("size", list(VIT_SIZES))
def test_full_models_registered(size):
    assert f"s2mae_vit_{size}_mae" in FULL_MODEL_REGISTRY


def test_defaults_follow_the_paper():
    mae = FULL_MODEL_REGISTRY.build("s2mae_vit_base_mae", img_size=32)
    assert mae.masking.mask_ratio == 0.9
    assert len(mae.decoder.blocks) == 4 and mae.decoder.mask_token.shape[-1] == 512
    assert mae.decoder.blocks[0].attn.num_heads == 16
    assert mae.decoder.pred.out_features == 3 * 8 * 8
    assert mae.target_norm == "minmax"
    assert mae.encoder.pos_embed.kind == "learnable" and len(mae.encoder.bands) == 12


def test_forward_outputs_and_mask_fraction():
    mae = tiny_mae()
    out = mae(torch.randn(4, 6, 32, 32))
    assert out.pred.shape == out.mask.shape == (4, 6, 32, 32)
    n_tokens = 2 * 4 * 4
    masked = n_tokens - num_visible(n_tokens, 0.9)
    # every token covers 3 bands × 8 × 8 pixels, so the pixel mask fraction equals the token fraction
    torch.testing.assert_close(out.mask.mean(dim=(1, 2, 3)), torch.full((4,), masked / n_tokens))
    assert out.loss["loss"].ndim == 0 and torch.isfinite(out.loss["loss"])


def test_loss_comes_only_from_masked_tokens():
    mae = tiny_mae()
    captured = {}

    def keep_output(module, inputs, output):
        output.retain_grad()
        captured["pred"] = output

    mae.decoder.pred.register_forward_hook(keep_output)
    x = torch.randn(2, 6, 32, 32)
    out = mae(x, generator=torch.Generator().manual_seed(0))
    pred = captured["pred"]
    out.loss["loss"].backward()
    grad_per_token = pred.grad.abs().sum(dim=-1)
    token_mask = out.mask[:, ::3, ::8, ::8].reshape(2, -1) > 0  # (group, row, col) order
    assert torch.all(grad_per_token[~token_mask] == 0)
    assert torch.all(grad_per_token[token_mask] > 0)


def test_masked_mse_ignores_visible_tokens_and_weights():
    target = torch.randn(2, 5, 4)
    pred = target.clone()
    mask = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.float32)
    pred[mask == 0] += 100.0  # visible tokens are wrong: no effect
    assert masked_mse(pred, target, mask) == 0
    pred[0, 0] += 2.0  # one masked token off by 2 on all 4 pixels: (4·4)/(5 masked tokens·4 px)
    torch.testing.assert_close(masked_mse(pred, target, mask), torch.tensor(16 / 20))
    weights = torch.ones_like(target)
    weights[0, 0, :2] = 0  # drop half of that token's pixels
    torch.testing.assert_close(masked_mse(pred, target, mask, weights), torch.tensor(8 / 18))


def test_target_normalisations():
    x = torch.randn(3, 4, 10, 10) * 5 + 2
    shift, scale = target_statistics(x, None, "minmax")
    t = (x - shift) / scale
    torch.testing.assert_close(t.amin(dim=(-2, -1)), torch.zeros(3, 4))
    torch.testing.assert_close(t.amax(dim=(-2, -1)), torch.ones(3, 4), atol=1e-5, rtol=0)
    shift, scale = target_statistics(x, None, "standardize")
    t = (x - shift) / scale
    torch.testing.assert_close(t.mean(dim=(-2, -1)), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(t.std(dim=(-2, -1), unbiased=False), torch.ones(3, 4), atol=1e-4, rtol=0)
    shift, scale = target_statistics(x, None, "none")
    torch.testing.assert_close((x - shift) / scale, x)
    # statistics ignore invalid pixels
    valid = torch.ones_like(x, dtype=torch.bool)
    y = x.clone()
    y[:, :, 0, 0] = 1e6
    valid[:, :, 0, 0] = False
    low = torch.where(valid, x, torch.inf).amin(dim=(-2, -1), keepdim=True)
    high = torch.where(valid, x, -torch.inf).amax(dim=(-2, -1), keepdim=True)
    shift, scale = target_statistics(y, valid, "minmax")
    torch.testing.assert_close(shift, low)
    torch.testing.assert_close(scale, high - low + 1e-6)
    with pytest.raises(ValueError, match="target_norm must be one of"):
        target_statistics(x, None, "zscore")


@pytest.mark.parametrize("target_norm", ["minmax", "standardize", "none"])
def test_reconstruction_is_returned_in_input_units(target_norm):
    """A perfect decoder output in target space maps back to the input exactly."""
    mae = tiny_mae(target_norm=target_norm)
    x = torch.randn(2, 6, 32, 32) * 3 + 10
    shift, scale = target_statistics(x, None, target_norm)
    from terratorch_specmae.models import patchify

    grid = mae.encoder.tokenizer.grid(32, 32)
    perfect = patchify((x - shift) / scale, grid)
    mae.decoder.forward = lambda *args, **kwargs: perfect
    out = mae(x)
    torch.testing.assert_close(out.pred, x, rtol=1e-4, atol=1e-4)
    assert out.loss["loss"] < 1e-8


def test_uneven_bands_and_sizes_are_padded_and_left_out_of_the_loss():
    mae = build_mae("tiny", bands=["B02", "B03", "B04", "B08", "B11", "B12", "B8A"], img_size=30, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
    x = torch.randn(2, 7, 30, 30)
    out = mae(x)
    assert out.pred.shape == out.mask.shape == (2, 7, 30, 30)
    weights = mae._pixel_weights(None, mae.encoder.tokenizer.grid(30, 30), x)
    # 7 real bands of 9, 30×30 real pixels of 32×32
    assert weights.sum() == 2 * 7 * 30 * 30 and weights.numel() == 2 * 9 * 32 * 32


def test_nan_pixels_error_or_are_excluded():
    x = torch.randn(2, 6, 32, 32)
    x[0, 1, 3:6, 3:6] = float("nan")
    with pytest.raises(ValueError, match="Input has 9 NaN values"):
        tiny_mae()(x)
    mae = tiny_mae(nan_policy="fill")
    out = mae(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss["loss"]) and torch.isfinite(out.pred).all()
    # the NaN pixels, and only they, are left out of the loss
    from terratorch_specmae.models import unpatchify

    grid = mae.encoder.tokenizer.grid(32, 32)
    weights = unpatchify(mae._pixel_weights(~torch.isnan(x), grid, x), grid)
    assert torch.equal(weights == 0, torch.isnan(x))


def test_bad_mae_options():
    with pytest.raises(ValueError, match="target_norm must be one of"):
        tiny_mae(target_norm="log")
    with pytest.raises(ValueError, match="Unknown masking strategy 'saliency_v9'"):
        tiny_mae(masking="saliency_v9")
    with pytest.raises(ValueError, match="Unknown model 's2mae_vit_giant_mae'"):
        FULL_MODEL_REGISTRY.build("s2mae_vit_giant_mae")


def test_pretraining_reduces_the_loss():
    torch.manual_seed(0)
    mae = tiny_mae(mask_ratio=0.75)
    x = torch.randn(1, 6, 1, 1).expand(8, 6, 32, 32) + 0.1 * torch.randn(8, 6, 32, 32)
    opt = torch.optim.AdamW(mae.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = mae(x).loss["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
