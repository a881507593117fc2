import pytest
import torch

from terratorch_specmae.masking.saliency import token_saliency


def test_saliency_by_hand():
    """Two indices, 4×4 pixels, 2×2 cells: richness and heterogeneity checked against hand values."""
    maps = torch.zeros(1, 2, 4, 4)
    maps[0, 0, :2, :2] = 0.5  # cell 0: |0.5| + 0 everywhere → R = 0.5, H = 0
    maps[0, :, :2, 2:] = 0.0  # cell 1: R = 0, H = 0
    maps[0, 0, 2:, :2] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # cell 2: R = 1, H = std(±1) = 1
    maps[0, 1, 2:, 2:] = torch.tensor([[0.0, 0.0], [0.0, 1.0]])  # cell 3: R = 0.25, H = sqrt(3)/4
    r = torch.tensor([0.5, 0.0, 1.0, 0.25])
    h = torch.tensor([0.0, 0.0, 1.0, 3**0.5 / 4])
    expected = 0.5 * r / 1.0 + 0.5 * h / 1.0  # min 0, max 1 for both
    torch.testing.assert_close(token_saliency(maps, patch_size=2), expected[None])
    torch.testing.assert_close(token_saliency(maps, patch_size=2, alpha=1.0), r[None])
    torch.testing.assert_close(token_saliency(maps, patch_size=2, alpha=0.0), h[None])


def test_saliency_is_per_image_and_in_unit_range():
    maps = torch.randn(3, 3, 32, 32)
    maps[1] *= 100  # scale of one image does not change its normalised map
    s = token_saliency(maps, patch_size=8)
    assert s.shape == (3, 16)
    assert s.ge(0).all() and s.le(1).all()
    for alpha in (0.0, 1.0):  # each normalised component spans exactly [0, 1] in every image
        part = token_saliency(maps, patch_size=8, alpha=alpha)
        torch.testing.assert_close(part.amin(dim=1), torch.zeros(3))
        torch.testing.assert_close(part.amax(dim=1), torch.ones(3))
    torch.testing.assert_close(token_saliency(maps[1:2] / 100, 8), s[1:2], atol=1e-5, rtol=0)


def test_edge_cells_use_only_real_pixels():
    maps = torch.ones(1, 1, 10, 10)  # 10 px with 8 px cells: edge cells hold 2×8, 8×2, 2×2 real pixels
    maps[0, 0, 8:, 8:] = 3.0
    s = token_saliency(maps, patch_size=8, alpha=1.0)
    torch.testing.assert_close(s, torch.tensor([[0.0, 0.0, 0.0, 1.0]]))  # richness 1, 1, 1, 3 → 0, 0, 0, 1
    assert torch.equal(token_saliency(torch.ones(1, 2, 16, 16), 8), torch.zeros(1, 4))  # flat: no NaN


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        token_saliency(torch.zeros(1, 1, 8, 8), 8, alpha=1.5)
    with pytest.raises(ValueError, match=r"Expected index maps \[B, K, H, W\]"):
        token_saliency(torch.zeros(1, 8, 8), 8)
