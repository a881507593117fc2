"""MRS (redundant_spectra): anchor + most similar bands, exact ratio, no NaN, auxiliary option, group variant."""

import pytest
import torch

from terratorch_specmae.masking import build_masking, num_visible
from terratorch_specmae.models import CubeTokenizer

HSI = [f"{400 + 10 * i}.0nm" for i in range(20)]


def band_grid(num_bands, size=8):
    """One token per band over one P×P patch: the SS-MAE spectral branch's layout."""
    return CubeTokenizer(num_bands, 4, patch_size=size, spectral_patch_size=1).grid(size, size)


def correlated_bands(batch, bands, size=8, seed=0):
    """Smooth-ish spectra: a few latent signals mixed into many bands, plus noise."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(batch, 3, size * size, generator=g)
    mixing = torch.rand(bands, 3, generator=g)
    x = torch.einsum("kc,bcl->bkl", mixing, latent) + 0.05 * torch.randn(batch, bands, size * size, generator=g)
    return x.reshape(batch, bands, size, size)


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.9])
def test_masks_the_anchor_and_its_most_similar_bands(ratio):
    grid = band_grid(20)
    x = correlated_bands(16, 20)
    mrs = build_masking("redundant_spectra", bands=HSI, mask_ratio=ratio)
    m = mrs(grid, 16, torch.device("cpu"), image=x, generator=torch.Generator().manual_seed(4))
    anchor, *_ = mrs.rank_groups(x, grid, torch.Generator().manual_seed(4))
    n_masked = 20 - num_visible(20, ratio)
    flat = x.reshape(16, 20, -1).double()
    for b in range(16):
        a = int(anchor[b])
        # independent similarity: numpy-free, by definition, in float64
        sims = torch.stack([torch.dot(flat[b, a], flat[b, i]) / (flat[b, a].norm() * flat[b, i].norm()) for i in range(20)])
        sims[a] = 2.0
        expected = set(torch.topk(sims, n_masked).indices.tolist())
        assert set(torch.nonzero(m.mask[b]).flatten().tolist()) == expected
    assert torch.equal(m.mask.sum(dim=1), torch.full((16,), float(n_masked)))  # the ratio, exactly
    assert m.ids_keep.shape == (16, num_visible(20, ratio))
    assert len(set(anchor.tolist())) > 4  # different anchors across samples


def test_zero_and_constant_bands_never_give_nan():
    grid = band_grid(6)
    x = correlated_bands(32, 6)
    x[:, 2] = 0.0  # a dead band
    x[:, 4] = 3.0  # a constant band
    mrs = build_masking("redundant_spectra", bands=HSI[:6], mask_ratio=0.5)
    anchor, similarity, _ = mrs.rank_groups(x, grid, torch.Generator().manual_seed(0))
    assert torch.isfinite(similarity).all()
    assert torch.all(similarity[:, 2] == 0)  # no direction: similarity 0
    dead_anchor = anchor == 2
    assert dead_anchor.any() and torch.all(similarity[dead_anchor] == 0)
    m = mrs(grid, 32, torch.device("cpu"), image=x)
    assert torch.equal(m.mask.sum(dim=1), torch.full((32,), 3.0))


def test_ties_are_broken_at_random():
    grid = band_grid(8)
    x = torch.ones(2000, 8, 8, 8)  # every band identical: all similarities tie
    mrs = build_masking("redundant_spectra", bands=HSI[:8], mask_ratio=0.5)
    m = mrs(grid, 2000, torch.device("cpu"), image=x, generator=torch.Generator().manual_seed(1))
    assert (m.mask.mean(dim=0) - 0.5).abs().max() < 0.05


def test_auxiliary_channels_option():
    bands = HSI[:10] + ["VV", "VH"]
    grid = band_grid(12)
    x = correlated_bands(200, 12)
    x[:, 10:] = x[:, :2] * 1.01  # auxiliary channels nearly copy two bands: MRS would like to mask them
    keep = build_masking("redundant_spectra", bands=bands, mask_ratio=0.5, mask_auxiliary=False)
    anchor, *_ = keep.rank_groups(x, grid, torch.Generator().manual_seed(0))
    assert anchor.max() < 10  # never an auxiliary anchor
    m = keep(grid, 200, torch.device("cpu"), image=x)
    assert torch.all(m.mask[:, 10:] == 0) and torch.equal(m.mask.sum(dim=1), torch.full((200,), 6.0))
    default = build_masking("redundant_spectra", bands=bands, mask_ratio=0.5)
    assert default(grid, 200, torch.device("cpu"), image=x).mask[:, 10:].sum() > 0  # default: they take part
    anchors, *_ = default.rank_groups(x, grid, torch.Generator().manual_seed(0))
    assert (anchors >= 10).any()
    with pytest.raises(ValueError, match="only 10 may be masked with mask_auxiliary=False"):
        build_masking("redundant_spectra", bands=bands, mask_ratio=0.9, mask_auxiliary=False).check_grid(grid)


def test_group_level_variant_masks_whole_groups_of_cube_tokens():
    from terratorch_specmae.backbones import build_mae

    mae = build_mae("tiny", bands="sentinel2_l2a", img_size=32, depth=1, masking="redundant_spectra", mask_ratio=0.5,
                    decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
    grid = mae.encoder.default_grid
    assert grid.groups == 4
    x = torch.randn(8, 12, 32, 32)
    x[:, 3:6] = x[:, 0:3] + 0.01 * torch.randn(8, 3, 32, 32)  # group 1 ≈ group 0
    m = mae.masking(grid, 8, x.device, image=x, generator=torch.Generator().manual_seed(0))
    per_group = m.mask.reshape(8, 4, grid.cells)
    assert torch.equal(per_group, per_group[..., :1].expand_as(per_group))  # a group is masked in every cell
    assert torch.equal(per_group[..., 0].sum(dim=1), torch.full((8,), 2.0))
    anchor, *_ = mae.masking.rank_groups(x, grid, torch.Generator().manual_seed(0))
    for b in range(8):  # an anchor in group 0 or 1 takes its near-copy with it
        if int(anchor[b]) in (0, 1):
            assert per_group[b, 0, 0] == 1 and per_group[b, 1, 0] == 1
    out = mae(x)
    assert torch.isfinite(out.loss["loss"])
    with pytest.raises(ValueError, match="RedundantSpectraMasking masks spectral groups separately"):
        build_mae("tiny", bands="landsat7", img_size=32, depth=1, spectral_patch_size=None, masking="redundant_spectra")


def test_runs_on_the_real_landsat_chips():
    """Band-level MRS (one band per token) on real Landsat 7 chips, as the datamodule normalises them."""
    from pathlib import Path

    import rasterio

    from terratorch_specmae.backbones import build_mae

    root = Path(__file__).resolve().parents[1] / "examples/data"
    files = sorted((root / "olinda_l7/train/images").glob("*.tif"))[:8]
    raw = torch.stack([torch.from_numpy(rasterio.open(f).read().astype("float32")) for f in files])
    means = torch.tensor([76.2173, 64.8727, 63.2397, 67.2249, 91.2848, 63.8113])[:, None, None]
    stds = torch.tensor([13.6366, 15.2552, 22.5513, 17.8851, 32.136, 30.9928])[:, None, None]
    x = (raw - means) / stds
    mae = build_mae("tiny", bands="landsat7", img_size=64, depth=1, spectral_patch_size=1, masking="redundant_spectra",
                    mask_ratio=0.5, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
    grid = mae.encoder.default_grid
    assert grid.groups == 6
    m = mae.masking(grid, 8, x.device, image=x, generator=torch.Generator().manual_seed(2))
    anchor, similarity, _ = mae.masking.rank_groups(x, grid, torch.Generator().manual_seed(2))
    per_band = m.mask.reshape(8, 6, grid.cells)[..., 0]
    for b in range(8):
        masked = per_band[b] > 0
        assert masked[anchor[b]] and int(masked.sum()) == 3
        assert similarity[b][masked & (torch.arange(6) != anchor[b])].min() >= similarity[b][~masked].max()
    assert torch.isfinite(mae(x).loss["loss"])


def test_correlation_similarity_ranks_bands_of_a_homogeneous_patch():
    """In a near-uniform patch all cosines approach 1; centred vectors (correlation) still tell bands apart."""
    g = torch.Generator().manual_seed(0)
    pattern_a, pattern_b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    x = torch.empty(1, 6, 8, 8)
    for i in range(6):  # a large offset per band, tiny spatial patterns: bands 0-2 share A, bands 3-5 share B
        x[0, i] = (5.0 + i + 0.05 * (pattern_a if i < 3 else pattern_b)).reshape(8, 8)
    grid = band_grid(6)
    cosine = build_masking("redundant_spectra", bands=HSI[:6], mask_ratio=0.5)
    correlation = build_masking("redundant_spectra", bands=HSI[:6], mask_ratio=0.5, similarity="correlation")
    _, sim_cos, _ = cosine.rank_groups(x, grid, torch.Generator().manual_seed(0))
    assert sim_cos.min() > 0.99  # cosine cannot tell the two families apart here
    for seed in range(6):
        m = correlation(grid, 1, x.device, image=x, generator=torch.Generator().manual_seed(seed)).mask[0]
        assert m[:3].sum() in (0, 3) and m.sum() == 3  # a whole family is masked together
    with pytest.raises(ValueError, match="similarity must be one of"):
        build_masking("redundant_spectra", bands=HSI[:6], similarity="euclidean")
