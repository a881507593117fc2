"""Tiled (sliding-window) inference with TerraTorch's tiled_inference equals whole-tile inference where both fit."""

import pytest
import torch
from terratorch.models import EncoderDecoderFactory
from terratorch.tasks.tiled_inference import tiled_inference

NECKS = [
    {"name": "SelectIndices", "indices": [0, 1, 2, 3]},
    {"name": "ReshapeTokensToImage", "remove_cls_token": False},
    {"name": "LearnedInterpolateToPyramidal"},
]


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_tiles_without_overlap_equal_the_model_on_each_tile(backbone, true_fp32):
    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        task="segmentation", backbone=backbone, backbone_bands="landsat7", backbone_img_size=32, backbone_patch_size=8,
        backbone_depth=4, necks=NECKS, decoder="UperNetDecoder", decoder_channels=16, num_classes=3,
    ).eval()
    scene = torch.randn(1, 6, 64, 96)  # a 2 × 3 grid of 32 px tiles

    def forward(x):
        return model(x).output

    with torch.no_grad():
        tiled = tiled_inference(forward, scene, out_channels=3, h_crop=32, w_crop=32, h_stride=32, w_stride=32,
                                delta=0, average_patches=False, blend_overlaps=False, padding=False)
        assert tiled.shape == (1, 3, 64, 96)
        for r in (0, 32):
            for c in (0, 32, 64):
                tile = forward(scene[..., r : r + 32, c : c + 32])
                torch.testing.assert_close(tiled[..., r : r + 32, c : c + 32], tile, rtol=1e-4, atol=1e-5)
        # a scene that fits in one tile: tiled and untiled inference agree
        small = scene[..., :32, :32]
        whole = tiled_inference(forward, small, out_channels=3, h_crop=32, w_crop=32, h_stride=32, w_stride=32,
                                delta=0, average_patches=False, blend_overlaps=False, padding=False)
        torch.testing.assert_close(whole, forward(small), rtol=1e-4, atol=1e-5)
