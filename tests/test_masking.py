import pytest
import torch

from terratorch_specmae.masking import (
    MASKING_STRATEGIES,
    RandomMasking,
    build_masking,
    gather_tokens,
    num_visible,
    scatter_mask,
)
from terratorch_specmae.models import CubeTokenizer


@pytest.mark.parametrize(("n", "ratio", "expected"), [(1024, 0.9, 102), (10, 0.9, 1), (100, 0.9, 10), (64, 0.75, 16), (5, 0.99, 1), (7, 0.0, 7)])
def test_num_visible_is_floor_of_kept_fraction(n, ratio, expected):
    assert num_visible(n, ratio) == expected


def test_ratio_out_of_range_is_an_error():
    with pytest.raises(ValueError, match=r"mask_ratio must be in \[0, 1\), got 1.0"):
        RandomMasking(1.0)


def test_random_masking_invariants():
    grid = CubeTokenizer(num_bands=12, embed_dim=8, patch_size=8, spectral_patch_size=3).grid(64, 64)
    assert grid.num_tokens == 256
    m = RandomMasking(0.9)(grid, batch_size=16, device=torch.device("cpu"))
    n_vis = num_visible(256, 0.9)
    assert m.ids_keep.shape == (16, n_vis)
    assert torch.equal(m.mask.sum(dim=1), torch.full((16,), 256.0 - n_vis))
    # the kept ids are exactly the unmasked positions
    assert torch.equal(torch.gather(m.mask, 1, m.ids_keep), torch.zeros(16, n_vis))
    # samples get different masks
    assert len({tuple(row.tolist()) for row in m.ids_keep}) == 16
    # uniform: over many draws, every token is masked about 90% of the time
    many = RandomMasking(0.9)(grid, batch_size=2000, device=torch.device("cpu"), generator=torch.Generator().manual_seed(1))
    freq = many.mask.mean(dim=0)
    assert (freq - 230 / 256).abs().max() < 0.05


def test_generator_makes_masks_reproducible():
    grid = CubeTokenizer(num_bands=6, embed_dim=8, spectral_patch_size=3).grid(32, 32)
    a = RandomMasking(0.75)(grid, 4, torch.device("cpu"), generator=torch.Generator().manual_seed(3))
    b = RandomMasking(0.75)(grid, 4, torch.device("cpu"), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.mask, b.mask)


def test_gather_and_scatter_restore_token_order():
    grid = CubeTokenizer(num_bands=6, embed_dim=8, spectral_patch_size=3).grid(32, 32)
    m = RandomMasking(0.5)(grid, 3, torch.device("cpu"))
    tokens = torch.randn(3, grid.num_tokens, 5)
    visible = gather_tokens(tokens, m.ids_keep)
    mask_token = torch.full((1, 1, 5), -7.0)
    full = scatter_mask(visible, mask_token, m.ids_restore)
    keep = m.mask == 0
    torch.testing.assert_close(full[keep], tokens[keep])
    assert torch.all(full[~keep] == -7.0)


def test_registry():
    assert "random" in MASKING_STRATEGIES
    assert isinstance(build_masking("random", mask_ratio=0.5), RandomMasking)
    with pytest.raises(ValueError, match="Unknown masking strategy 'checkerboard'; expected one of"):
        build_masking("checkerboard")


@pytest.mark.parametrize(("bands", "ratio"), [(12, 0.9), (12, 0.75), (6, 0.5), (3, 0.9)])
def test_spatially_consistent_masking_hides_whole_locations(bands, ratio):
    grid = CubeTokenizer(num_bands=bands, embed_dim=8, patch_size=8, spectral_patch_size=3).grid(64, 64)
    m = build_masking("spatially_consistent", mask_ratio=ratio)(grid, 32, torch.device("cpu"))
    per_group = m.mask.reshape(32, grid.groups, grid.cells)
    assert torch.equal(per_group, per_group[:, :1].expand_as(per_group))  # same cells in every group
    n_cells = num_visible(grid.cells, ratio)
    assert m.ids_keep.shape == (32, n_cells * grid.groups)
    assert torch.equal((per_group[:, 0] == 0).sum(dim=1), torch.full((32,), n_cells))
    assert torch.equal(torch.gather(m.mask, 1, m.ids_keep), torch.zeros_like(m.ids_keep, dtype=torch.float32))
    assert len({tuple(row.tolist()) for row in m.ids_keep}) == 32


def test_mae_trains_with_spatially_consistent_masking():
    from terratorch_specmae.backbones import build_mae

    mae = build_mae("tiny", bands="landsat7", img_size=32, masking="spatially_consistent", mask_ratio=0.75,
                    decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
    out = mae(torch.randn(2, 6, 32, 32))
    bands_agree = out.mask[:, :1].expand_as(out.mask)
    assert torch.equal(out.mask, bands_agree)  # a masked location is masked in every band
    assert torch.isfinite(out.loss["loss"])


LANDSAT = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
TOKENIZERS = {"patch_2d": None, "cube_3d": 3}  # spectral_patch_size: all 6 bands, or t=3 → 2 groups


@pytest.mark.parametrize("tokens", list(TOKENIZERS))
@pytest.mark.parametrize("name", ["random", "cube_random", "spatially_consistent", "saliency", "redundant_spectra"])
def test_every_strategy_with_every_tokenizer(name, tokens):
    from terratorch_specmae.backbones import build_mae

    kwargs = {"bands": LANDSAT, "img_size": 40, "patch_size": 8, "spectral_patch_size": TOKENIZERS[tokens],
              "masking": name, "mask_ratio": 0.75, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2}
    if name in ("cube_random", "redundant_spectra") and tokens == "patch_2d":
        with pytest.raises(ValueError, match=r"Masking .* needs at least 2 spectral groups .* makes 1 "
                                             r"\(6 bands, spectral_patch_size=6\)"):
            build_mae("tiny", **kwargs)
        return
    mae = build_mae("tiny", **kwargs)
    grid = mae.encoder.default_grid
    assert grid.groups == (1 if tokens == "patch_2d" else 2) and grid.cells == 25
    image = torch.rand(3, 6, 40, 40) * 100 + 1
    m = mae.masking(grid, 3, torch.device("cpu"), image=image, progress=0.5)
    expected = {
        "spatially_consistent": num_visible(grid.cells, 0.75) * grid.groups,
        "redundant_spectra": num_visible(grid.groups, 0.75) * grid.cells,  # whole band groups
    }.get(name, num_visible(grid.num_tokens, 0.75))
    assert m.ids_keep.shape == (3, expected)
    assert torch.equal(m.mask.sum(dim=1), torch.full((3,), float(grid.num_tokens - expected)))
    assert torch.equal(torch.gather(m.mask, 1, m.ids_keep), torch.zeros_like(m.ids_keep, dtype=torch.float32))
    out = mae(image)
    assert out.mask.shape == image.shape and torch.isfinite(out.loss["loss"])


def test_cube_random_is_random_3d_masking():
    grid = CubeTokenizer(num_bands=12, embed_dim=8, patch_size=8, spectral_patch_size=3).grid(32, 32)
    a = build_masking("cube_random", mask_ratio=0.9)(grid, 4, torch.device("cpu"), generator=torch.Generator().manual_seed(5))
    b = build_masking("random", mask_ratio=0.9)(grid, 4, torch.device("cpu"), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.mask, b.mask)
    # groups of one location are drawn independently: some location keeps one group and hides another
    per_group = a.mask.reshape(4, grid.groups, grid.cells)
    assert (per_group.amax(dim=1) != per_group.amin(dim=1)).any()


def test_registering_a_strategy():
    from terratorch_specmae.masking import register_masking

    with pytest.raises(TypeError, match="must subclass MaskingStrategy"):
        register_masking("function")(lambda grid, batch_size, device: None)
    with pytest.raises(ValueError, match="'random' is already registered"):
        register_masking("random")(RandomMasking)
