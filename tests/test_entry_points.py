"""Named entry points instead of reaching into internals."""

from __future__ import annotations

import torch
from tiny import tiny_ssmae

from terratorch_specmae.models.encoder import fold_spectral_groups

ENC = {"img_size": 16, "embed_dim": 32, "depth": 2}  # over tests/tiny.py's: a 2×2 grid of 2 groups, 2 blocks


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.1)
    return module


def test_encode_is_the_encoders_output_of_embedded_tokens(tiny_encoder):
    encoder = randomised(tiny_encoder(out_indices=[-1], **ENC)).eval()
    x = torch.randn(2, 6, 16, 16)
    tokens, grid = encoder.embed(x)
    expected = encoder(x)[-1]
    assert torch.allclose(fold_spectral_groups(encoder.encode(tokens), grid.groups, encoder.fold), expected, atol=1e-6)
    assert encoder.encode(tokens[:, :3]).shape == (2, 3, 32)  # any subset of tokens (the visible ones)


def test_prepare_input_gives_the_masking_the_token_order_and_the_grid(tiny_mae):
    mae = tiny_mae(nan_policy="fill", masking="random", **ENC)
    order = [2, 0, 1, 3, 5, 4]
    mae.encoder.set_band_order(order)
    x = torch.randn(2, 6, 16, 16)
    x[0, 1, 0, 0] = float("nan")
    prepared, valid, grid = mae.prepare_input(x)
    assert torch.equal(prepared[:, 0], torch.nan_to_num(x[:, 2])) and torch.equal(prepared[:, 2], torch.nan_to_num(x[:, 1]))
    assert not valid[0, 2, 0, 0] and valid.sum() == valid.numel() - 1  # input band 1 sits at token position 2
    assert (grid.height, grid.width, grid.groups) == (2, 2, 2)


def test_ssmae_to_encoder_is_the_pretrained_encoders_as_a_backbone():
    model = randomised(tiny_ssmae(num_heads=4, depth=2)).eval()
    encoder = model.to_encoder().eval()
    x = torch.randn(3, 6, 5, 5)
    spatial = model.spatial.encoder.encode(model.spatial.encoder.embed(x)[0])
    spectral = model.spectral.encoder.encode(model.spectral.encoder.embed(x)[0]).mean(dim=1, keepdim=True)
    expected = torch.cat([spatial, spectral.expand(-1, spatial.shape[1], -1)], dim=-1)
    assert torch.allclose(encoder(x)[0], expected, atol=1e-6)
    assert encoder.bands == model.bands and encoder.window_size == 5
