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


def test_tiled_prediction_callback_makes_the_task_predict_tile_by_tile(true_fp32, monkeypatch):
    """TiledPrediction switches a SemanticSegmentationTask's predict_step to tiled_inference at
    predict time: without it the task predicts the scene whole, with it tile by tile, with the
    callback's settings, and the class map is the argmax of tiled_inference's logits."""
    import terratorch.tasks.segmentation_tasks as segmentation_tasks
    from terratorch.tasks import SemanticSegmentationTask

    from terratorch_specmae.callbacks import TiledPrediction, _class_maps

    calls = []

    def spy(model_forward, x, **kwargs):
        logits = tiled_inference(model_forward, x, **kwargs)
        calls.append((kwargs, logits))
        return logits

    monkeypatch.setattr(segmentation_tasks, "tiled_inference", spy)
    torch.manual_seed(0)
    task = SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory", loss="ce",
        model_args={
            "backbone": "s2mae_vit_tiny", "backbone_bands": "landsat7", "backbone_img_size": 32,
            "backbone_patch_size": 8, "backbone_depth": 4, "necks": NECKS, "decoder": "UperNetDecoder",
            "decoder_channels": 16, "num_classes": 3,
        },
    ).eval()  # fmt: skip
    scene = torch.randn(1, 6, 48, 80)  # not a multiple of the 32 px crop
    with torch.no_grad():
        whole = _class_maps(task.predict_step({"image": scene}, 0))
        assert calls == []  # no tiling without the callback
        TiledPrediction(crop=32, stride=24, delta=4, padding=False, blend_overlaps=False).on_predict_start(None, task)
        tiled = _class_maps(task.predict_step({"image": scene}, 0))
        by_hand = tiled_inference(lambda x: task(x).output, scene, h_crop=32, w_crop=32, h_stride=24, w_stride=24,
                                  delta=4, padding=False, blend_overlaps=False)  # fmt: skip
    assert len(calls) == 1
    kwargs, logits = calls[0]
    assert {k: kwargs[k] for k in ("h_crop", "w_crop", "h_stride", "w_stride", "delta", "padding")} == {
        "h_crop": 32, "w_crop": 32, "h_stride": 24, "w_stride": 24, "delta": 4, "padding": False,
    }  # fmt: skip
    torch.testing.assert_close(logits, by_hand)
    assert tiled.shape == whole.shape == (1, 48, 80)
    torch.testing.assert_close(tiled, logits.argmax(dim=1))


def test_tiled_prediction_callback_refuses_bad_settings_and_tasks():
    from terratorch_specmae.callbacks import TiledPrediction

    with pytest.raises(ValueError, match=r"h_stride \(64\) must not exceed h_crop \(32\)"):
        TiledPrediction(crop=32, stride=32, h_stride=64)
    with pytest.raises(ValueError, match="w_crop must be a positive number of pixels, got 0"):
        TiledPrediction(crop=32, stride=16, w_crop=0)
    with pytest.raises(TypeError, match="needs a TerraTorch task whose predict_step tiles.*got Linear"):
        TiledPrediction(crop=32, stride=16).on_predict_start(None, torch.nn.Linear(2, 2))
