"""Object detection: boxes from the label chips, our backbones under TerraTorch's Faster R-CNN factory."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from terratorch.registry import MODEL_FACTORY_REGISTRY

from terratorch_specmae.plotting import detection_figure

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_detection_boxes", ROOT / "examples/make_detection_boxes.py")
make_detection_boxes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_detection_boxes)

BANDS = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
NECKS = [
    {"name": "SelectIndices", "indices": [0, 1, 2, 3]},
    {"name": "ReshapeTokensToImage", "remove_cls_token": False},
    {"name": "LearnedInterpolateToPyramidal"},
    {"name": "FeaturePyramidNetworkNeck", "out_channel": 32},
]


def test_objects_are_opened_connected_regions_with_enough_pixels():
    labels = np.full((20, 20), 2, np.uint8)  # built-up everywhere
    labels[2:7, 3:9] = 0  # a 5 × 6 water body: box x 3..9, y 2..7
    labels[10:18, 12:15] = 1  # an 8 × 3 green space
    labels[10:12, 1:3] = 1  # 2 × 2 = 4 px: too small once opened (and < 20 px)
    labels[15, 0:10] = 1  # a one-pixel-wide line: removed by the 3 × 3 opening
    boxes, names = make_detection_boxes.objects(labels)
    assert boxes == [[3, 2, 9, 7], [12, 10, 15, 18]] and names == [1, 2]


def test_shipped_boxes_are_what_the_script_writes():
    for split in ("train", "val"):
        for label_path in sorted((ROOT / "examples/data/olinda_l7" / split / "labels").glob("*_label.tif"))[:5]:
            with rasterio.open(label_path) as src:
                boxes, names = make_detection_boxes.objects(src.read(1))
            shipped = json.loads((label_path.parent.parent / "boxes" / label_path.name.replace("_label.tif", ".json")).read_text())
            assert shipped == {"boxes": boxes, "labels": names}


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_faster_rcnn_on_our_backbone_trains_and_predicts_boxes(backbone):
    model = MODEL_FACTORY_REGISTRY.build("ObjectDetectionModelFactory").build_model(
        "object_detection", backbone=backbone, framework="faster-rcnn", num_classes=3, backbone_bands=BANDS,
        backbone_img_size=64, backbone_depth=4, backbone_fold="concat", necks=NECKS,
        framework_box_batch_size_per_image=32, framework_rpn_post_nms_top_n_train=100,
    )  # fmt: skip
    x = torch.randn(2, 6, 64, 64)
    targets = [
        {"boxes": torch.tensor([[3.0, 2.0, 20.0, 30.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},  # a chip without objects
    ]
    losses = model.train()(x, targets).output
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    tokenizer = model.torchvision_model.backbone.backbone.tokenizer.proj.weight
    assert tokenizer.grad is not None and tokenizer.grad.abs().sum() > 0  # the loss reaches our encoder
    with torch.no_grad():
        detections = model.eval()(x).output
    assert len(detections) == 2
    for d in detections:
        assert d["boxes"].shape[1:] == (4,) and d["boxes"].shape[0] == d["scores"].shape[0] == d["labels"].shape[0]
        if len(d["boxes"]):
            assert d["boxes"].min() >= 0 and d["boxes"].max() <= 64 and set(d["labels"].tolist()) <= {1, 2}


def test_detection_figure_draws_boxes_above_the_threshold_only():
    image = torch.rand(1, 3, 16, 16)
    target = [{"boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0]]), "labels": torch.tensor([1])}]
    prediction = [{"boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0], [6.0, 6.0, 9.0, 9.0]]), "labels": torch.tensor([1, 2]),
                   "scores": torch.tensor([0.9, 0.2])}]  # fmt: skip
    fig = detection_figure(image, target, prediction, [0, 1, 2], ["background", "water", "green"], score_threshold=0.5)
    reference, predicted = fig.axes[:2]
    assert len(reference.patches) == 1 and len(predicted.patches) == 1
    assert predicted.patches[0].get_xy() == (0.5, 0.5) and predicted.patches[0].get_width() == 4

