import pytest
import torch
from terratorch.registry import FULL_MODEL_REGISTRY

from terratorch_specmae.backbones import VIT_SIZES, build_mae
from terratorch_specmae.masking import num_visible
from terratorch_specmae.models import masked_mse, target_statistics, unpatchify


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
def test_reconstruction_is_returned_in_input_units_from_visible_statistics(target_norm):
    """The decoder output is mapped back to input units with statistics of the visible pixels:
    the hidden pixels' values never reach the reconstruction (pictures, metrics)."""
    from terratorch_specmae.models import patchify

    mae = tiny_mae(target_norm=target_norm).eval()
    x = torch.randn(2, 6, 32, 32) * 3 + 10
    grid = mae.encoder.tokenizer.grid(32, 32)
    output = torch.rand(2, grid.num_tokens, grid.pixels_per_token)
    mae.decoder.forward = lambda *args, **kwargs: output
    out = mae(x, generator=torch.Generator().manual_seed(0))
    seen = out.mask == 0
    shift, scale = target_statistics(x, seen, target_norm)
    expected = mae._crop(unpatchify(output, grid), grid) * scale + shift
    torch.testing.assert_close(out.pred, expected, rtol=1e-5, atol=1e-5)
    changed = torch.where(out.mask.bool(), x * 50 - 300, x)  # other hidden values, same visible ones
    again = mae(changed, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again.pred, out.pred)
    if target_norm == "none":  # a perfect target-space output is the input itself
        mae.decoder.forward = lambda *args, **kwargs: patchify(x, grid)
        torch.testing.assert_close(mae(x).pred, x)


def test_baseline_loss_is_the_mean_of_visible_predictor():
    """``baseline_loss``: masked MSE, in target space, of "each masked pixel = the band's visible mean"."""
    mae = tiny_mae(target_norm="minmax").eval()
    x = torch.rand(3, 6, 32, 32) * 100
    out = mae(x, generator=torch.Generator().manual_seed(1))
    shift, scale = target_statistics(x, None, "minmax")
    target = (x - shift) / scale
    hidden = out.mask.bool()
    mean_visible = torch.where(hidden, 0.0, target).sum(dim=(-2, -1), keepdim=True) / (~hidden).sum(
        dim=(-2, -1), keepdim=True
    )
    expected = ((mean_visible - target) ** 2)[hidden].mean()
    torch.testing.assert_close(out.loss["baseline_loss"], expected, rtol=1e-5, atol=1e-7)
    assert not out.loss["baseline_loss"].requires_grad
    # the model's loss is the same kind of number: the decoder output equal to that mean scores the same
    grid = mae.encoder.tokenizer.grid(32, 32)
    from terratorch_specmae.models import patchify

    mae.decoder.forward = lambda *args, **kwargs: patchify(mean_visible.expand_as(target), grid)
    again = mae(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(again.loss["loss"], again.loss["baseline_loss"])


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
    with pytest.raises(ValueError, match=r"Input has 9 invalid values \(9 NaN\) of 12288, in bands \{'GREEN': 9\}"):
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


def test_sigmae_full_models_default_to_saliency_masking_on_2d_patches():
    mae = FULL_MODEL_REGISTRY.build("sigmae_vit_small_mae", img_size=32, depth=1)
    assert type(mae.masking).__name__ == "SaliencyMasking" and mae.masking.mask_ratio == 0.9
    assert mae.masking.indices.names == ["NDVI", "NDWI", "NDBI"]
    assert mae.encoder.groups == 1 and mae.decoder.pred.out_features == 12 * 16 * 16
    out = mae(torch.rand(2, 12, 32, 32) * 3000, progress=0.5)
    assert out.mask.shape == (2, 12, 32, 32) and torch.isfinite(out.loss["loss"])
    assert FULL_MODEL_REGISTRY.build("s2mae_vit_tiny_mae", img_size=32, depth=1).masking.min_spectral_groups == 2


def _decoder_lengths(mae):
    lengths = []
    mae.decoder.blocks[0].register_forward_hook(lambda module, inputs, output: lengths.append(inputs[0].shape[1]))
    return lengths


@pytest.mark.parametrize("masking", ["random", "saliency"])
def test_decode_fraction_runs_the_decoder_on_fewer_tokens(masking):
    mae = tiny_mae(masking=masking, mask_ratio=0.75, decode_fraction=0.5)
    lengths = _decoder_lengths(mae)
    n_tokens = 2 * 4 * 4
    n_visible = num_visible(n_tokens, 0.75)
    k = (n_tokens - n_visible) // 2
    x = torch.rand(3, 6, 32, 32) * 200 + 1
    out = mae(x, generator=torch.Generator().manual_seed(0))
    assert lengths == [n_visible + k]
    # in training the mask marks the decoded masked tokens: k per sample, each 3 bands × 8 × 8 pixels
    assert torch.equal(out.mask.sum(dim=(1, 2, 3)), torch.full((3,), float(k * 3 * 64)))
    mae.eval()
    with torch.no_grad():
        full = mae(x, generator=torch.Generator().manual_seed(0))
    assert lengths[-1] == n_tokens  # evaluation decodes every token
    assert torch.equal(full.mask.sum(dim=(1, 2, 3)), torch.full((3,), float((n_tokens - n_visible) * 3 * 64)))


def test_decode_fraction_keeps_the_most_salient_masked_tokens_and_scores_only_them():
    mae = tiny_mae(masking="saliency", mask_ratio=0.75, decode_fraction=0.25,
                   masking_options={"schedule": "constant", "gamma_max": 0.0, "selection": "topk", "noise": 0.0})
    captured = {}

    def keep_output(module, inputs, output):
        output.retain_grad()
        captured["pred"] = output

    mae.decoder.pred.register_forward_hook(keep_output)
    x = torch.rand(2, 6, 32, 32) * 200 + 1
    out = mae(x, generator=torch.Generator().manual_seed(1))
    out.loss["loss"].backward()
    decoded_masked = out.mask[:, ::3, ::8, ::8].reshape(2, -1) > 0  # (group, row, col) order
    # γ=0: the mask itself is random, but of its masked tokens the most salient are decoded
    token_mask = mae.masking(mae.encoder.default_grid, 2, x.device, generator=torch.Generator().manual_seed(1), image=x)
    saliency = mae.masking.saliency(x, 8).repeat(1, 2)
    for b in range(2):
        masked = token_mask.mask[b] > 0
        assert torch.all(decoded_masked[b] <= masked)
        lowest_decoded = saliency[b][decoded_masked[b]].min()
        assert torch.all(saliency[b][masked & ~decoded_masked[b]] <= lowest_decoded)
    # gradient reaches exactly the decoded masked tokens (the visible ones are decoded but not scored)
    grad = captured["pred"].grad.abs().sum(dim=-1) > 0
    assert torch.equal(grad.sum(dim=1), decoded_masked.sum(dim=1))


def test_decode_fraction_validation_loss_is_comparable_with_training():
    """In evaluation every token is decoded, ``loss`` covers the same share of masked tokens as in
    training (so train/val curves compare) and ``loss_all_masked`` covers all of them."""
    mae = tiny_mae(mask_ratio=0.75, decode_fraction=0.5).eval()
    x = torch.rand(2, 6, 32, 32) * 100
    with torch.no_grad():
        out = mae(x, generator=torch.Generator().manual_seed(0))
    assert set(out.loss) == {"loss", "baseline_loss", "loss_all_masked"}
    full = tiny_mae(mask_ratio=0.75).eval()
    full.load_state_dict(mae.state_dict())
    with torch.no_grad():
        reference = full(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss["loss_all_masked"], reference.loss["loss"])
    assert out.loss["loss"] != reference.loss["loss"]  # a subset of half the masked tokens


def test_decode_fraction_must_be_a_fraction():
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"decode_fraction must be in \(0, 1\]"):
            tiny_mae(decode_fraction=bad)


def test_visible_target_statistics_never_see_the_hidden_pixels():
    """``target_stats: visible``: the target and the loss do not depend on the hidden pixels' range,
    and a perfect target-space output maps back to the input exactly."""
    from terratorch_specmae.models import patchify

    mae = tiny_mae(target_norm="minmax", target_stats="visible").eval()
    x = torch.rand(2, 6, 32, 32) * 100
    with torch.no_grad():
        out = mae(x, generator=torch.Generator().manual_seed(0))
    seen = out.mask == 0
    shift, scale = target_statistics(x, seen, "minmax")
    grid = mae.encoder.tokenizer.grid(32, 32)
    mae.decoder.forward = lambda *args, **kwargs: patchify((x - shift) / scale, grid)
    perfect = mae(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(perfect.pred, x, rtol=1e-4, atol=1e-3)
    assert perfect.loss["loss"] < 1e-10
    with pytest.raises(ValueError, match="target_stats must be one of"):
        tiny_mae(target_stats="hidden")
