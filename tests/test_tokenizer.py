import pytest
import torch
import torch.nn.functional as F

from terratorch_specmae.models import CubeTokenizer, SpatialSpectralPosEmbed, patchify, unpatchify


def test_patchify_roundtrip_and_order():
    tok = CubeTokenizer(num_bands=6, embed_dim=8, patch_size=4, spectral_patch_size=3)
    x = torch.randn(2, 6, 8, 12)
    grid = tok.grid(8, 12)
    assert (grid.groups, grid.height, grid.width, grid.num_tokens) == (2, 2, 3, 12)
    p = patchify(x, grid)
    assert p.shape == (2, 12, 3 * 4 * 4)
    torch.testing.assert_close(unpatchify(p, grid), x)
    # token (group 1, row 1, col 2) holds bands 3-5, rows 4-7, cols 8-11
    index = 1 * 6 + 1 * 3 + 2
    torch.testing.assert_close(p[0, index].reshape(3, 4, 4), x[0, 3:6, 4:8, 8:12])


def test_tokenizer_equals_conv3d():
    tok = CubeTokenizer(num_bands=6, embed_dim=16, patch_size=4, spectral_patch_size=3)
    x = torch.randn(2, 6, 8, 8)
    tokens, grid = tok(x)
    conv = F.conv3d(x.unsqueeze(1), tok.proj.weight, tok.proj.bias, stride=(3, 4, 4))  # [B, D, G, h, w]
    expected = conv.flatten(2).transpose(1, 2)  # (group, row, col) order
    torch.testing.assert_close(tokens, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("band_padding", ["replicate", "zero"])
def test_padding_of_bands_and_pixels(band_padding):
    tok = CubeTokenizer(num_bands=7, embed_dim=8, patch_size=8, spectral_patch_size=3, band_padding=band_padding)
    x = torch.randn(1, 7, 30, 27)
    grid = tok.grid(30, 27)
    assert (grid.groups, grid.height, grid.width) == (3, 4, 4)
    padded = tok.pad(x, grid)
    assert padded.shape == (1, 9, 32, 32)
    torch.testing.assert_close(padded[:, :7, :30, :27], x)
    fill = x[:, 6:7, :30, :27].expand(-1, 2, -1, -1) if band_padding == "replicate" else torch.zeros(1, 2, 30, 27)
    torch.testing.assert_close(padded[:, 7:, :30, :27], fill)
    torch.testing.assert_close(padded[:, :7, 30:, :27], x[:, :, 29:30, :].expand(-1, -1, 2, -1))
    assert tok(x)[0].shape == (1, 48, 8)


def test_tokenizer_rejects_impossible_settings():
    with pytest.raises(ValueError, match="spectral_patch_size=5 is larger than the 4 input bands"):
        CubeTokenizer(num_bands=4, embed_dim=8, spectral_patch_size=5)
    with pytest.raises(ValueError, match="band_padding must be one of"):
        CubeTokenizer(num_bands=4, embed_dim=8, spectral_patch_size=3, band_padding="mirror")
    with pytest.raises(ValueError, match=r"patch_size must be an integer, got '8' \(str\)"):
        CubeTokenizer(num_bands=4, embed_dim=8, patch_size="8")


@pytest.mark.parametrize("kind", ["learnable", "sincos", "sincos_3d"])
def test_position_embeddings_are_spatial_plus_spectral(kind):
    pe = SpatialSpectralPosEmbed(dim=32, grid_size=(3, 4), groups=2, kind=kind)
    table = pe(3, 4).reshape(2, 12, 32)
    assert not torch.allclose(table[0], table[1])  # groups differ
    assert not torch.allclose(table[0, 0], table[0, 1])  # cells differ
    if kind != "sincos_3d":
        # separable: the difference between groups is the same at every cell
        diff = table[1] - table[0]
        torch.testing.assert_close(diff, diff[:1].expand_as(diff))
    assert pe(6, 8).shape == (1, 2 * 48, 32)  # other image sizes
    assert (kind == "learnable") == any(p.requires_grad for p in pe.parameters())


def test_position_embedding_rejects_bad_kind_and_width():
    with pytest.raises(ValueError, match="pos_embed must be one of"):
        SpatialSpectralPosEmbed(dim=32, grid_size=(2, 2), groups=2, kind="rope")
    with pytest.raises(ValueError, match="divisible by 16"):
        SpatialSpectralPosEmbed(dim=36, grid_size=(2, 2), groups=2, kind="sincos_3d")
