"""Change detection through TerraTorch's temporal route, and per-class segmentation metrics by hand."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from terratorch.models import EncoderDecoderFactory

from terratorch_specmae.tasks import SegmentationTask

ROOT = Path(__file__).resolve().parents[1]
NECKS = [
    {"name": "SelectIndices", "indices": [0, 1, 2, 3]},
    {"name": "ReshapeTokensToImage", "remove_cls_token": False},
    {"name": "LearnedInterpolateToPyramidal"},
]


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_siamese_encoder_differences_the_dates(backbone):
    model = EncoderDecoderFactory().build_model(
        task="segmentation", backbone=backbone, backbone_bands="landsat7", backbone_img_size=32, backbone_patch_size=8,
        backbone_depth=4, backbone_use_temporal=True, backbone_temporal_pooling="diff", backbone_temporal_n_timestamps=2,
        necks=NECKS, decoder="UperNetDecoder", decoder_channels=32, num_classes=2,
    )
    x = torch.randn(2, 6, 2, 32, 32)
    with torch.no_grad():
        assert model(x).output.shape == (2, 2, 32, 32)
        same = torch.randn(1, 6, 1, 32, 32).expand(1, 6, 2, 32, 32).contiguous()
        assert all(f.abs().max() == 0 for f in model.encoder(same))  # one shared encoder: equal dates → zero
        feats = model.encoder(x)
        single = model.encoder.encoder  # the wrapped backbone
        expected = [a - b for a, b in zip(single(x[:, :, 0]), single(x[:, :, 1]), strict=True)]  # date 1 − date 2
        for f, e in zip(feats, expected, strict=True):
            torch.testing.assert_close(f, e)


def test_per_class_precision_recall_f1_iou_by_hand():
    task = SegmentationTask(
        model_args={"backbone": "s2mae_vit_tiny", "backbone_bands": "landsat7", "backbone_img_size": 16,
                    "backbone_depth": 4, "necks": NECKS, "decoder": "UperNetDecoder", "decoder_channels": 16,
                    "num_classes": 2},
        model_factory="EncoderDecoderFactory", class_names=["no_change", "change"], ignore_index=-1,
    )
    metrics = task.val_metrics
    target = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 0]]])  # 4 change pixels
    pred = torch.tensor([[[0, 1, 1, 0], [0, 1, 1, 1]]])  # 5 predicted: 3 right (TP), 2 wrong (FP), 1 missed (FN)
    metrics.update(torch.nn.functional.one_hot(pred, 2).permute(0, 3, 1, 2).float(), target)
    out = metrics.compute()
    tp, fp, fn = 3, 2, 1
    assert out["val/Precision_change"].item() == pytest.approx(tp / (tp + fp))
    assert out["val/Recall_change"].item() == pytest.approx(tp / (tp + fn))
    assert out["val/F1_change"].item() == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert out["val/IoU_change"].item() == pytest.approx(tp / (tp + fp + fn))
    assert out["val/Precision_no_change"].item() == pytest.approx(2 / 3)  # 3 predicted no-change, 2 right


def test_constructed_pairs_are_documented_and_consistent():
    images = sorted((ROOT / "examples/data/olinda_l7_cd/val/images").glob("*.tif"))
    assert len(images) == 20
    changed = 0
    for path in images:
        with rasterio.open(path) as pair, rasterio.open(str(path).replace("/images/", "/labels/").replace(".tif", "_label.tif")) as lab:
            data, change = pair.read().astype(float), lab.read(1).astype(bool)
            assert pair.count == 12 and pair.descriptions[0] == "BLUE_t1" and pair.descriptions[6] == "BLUE_t2"
        diff = np.abs(data[6:] - data[:6]).mean(axis=0)
        if change.any():
            assert diff[change].mean() > 3 * diff[~change].mean()  # changed pixels differ much more than the rest
        assert diff[~change].mean() > 0.5  # unchanged pixels are not identical between dates
        changed += change.sum()
    assert changed > 1000
