"""Multi-label classification: mAP against hand-computed values, the chip datamodule, the task."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from terratorch_specmae.datamodules import MultiLabelChipDataModule
from terratorch_specmae.datamodules.multilabel_chips import read_label_table
from terratorch_specmae.tasks import MultiLabelTask

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples/data/olinda_l7"
MEANS = [76.2173, 64.8727, 63.2397, 67.2249, 91.2848, 63.8113]
STDS = [13.6366, 15.2552, 22.5513, 17.8851, 32.136, 30.9928]


def tiny_task():
    return MultiLabelTask(
        model_args={"backbone": "s2mae_vit_tiny", "backbone_bands": "landsat7", "backbone_img_size": 32,
                    "backbone_depth": 1, "backbone_out_indices": [0], "backbone_fold": "mean",
                    "necks": [{"name": "ReshapeTokensToImage", "remove_cls_token": False}],
                    "decoder": "IdentityDecoder", "num_classes": 2},
        model_factory="EncoderDecoderFactory", loss="bce",
    )


def test_map_micro_and_macro_match_hand_computed_values():
    metrics = tiny_task().val_metrics
    scores = torch.tensor([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.4]])
    labels = torch.tensor([[1, 1], [0, 0], [1, 0], [0, 1]])
    metrics.update(scores, labels)
    out = metrics.compute()
    # label 0, ranked 0.9+ 0.8- 0.3+ 0.1-: AP = (1/1 + 2/3) / 2; label 1, ranked 0.7- 0.6- 0.4+ 0.2+: (1/3 + 2/4) / 2
    ap = [(1 + 2 / 3) / 2, (1 / 3 + 2 / 4) / 2]
    assert out["val/mAP_macro"].item() == pytest.approx(sum(ap) / 2)
    # pooled: 0.9+ 0.8- 0.7- 0.6- 0.4+ 0.3+ 0.2+ 0.1-: (1/1 + 2/5 + 3/6 + 4/7) / 4
    assert out["val/mAP_micro"].item() == pytest.approx((1 + 2 / 5 + 3 / 6 + 4 / 7) / 4)


def test_chip_datamodule_reads_tables_and_normalises():
    dm = MultiLabelChipDataModule(str(DATA / "train/images"), str(DATA / "train/multilabel.csv"),
                                  str(DATA / "val/images"), str(DATA / "val/multilabel.csv"), MEANS, STDS, batch_size=4)
    dm.setup("fit")
    assert dm.class_names == ["water", "vegetation", "built_up"]
    assert len(dm.datasets["train"]) == 70 and len(dm.datasets["val"]) == 20
    sample = dm.datasets["val"][0]
    import rasterio

    with rasterio.open(sample["filename"]) as src:
        raw = torch.from_numpy(src.read().astype(np.float32))
    torch.testing.assert_close(sample["image"], (raw - torch.tensor(MEANS)[:, None, None]) / torch.tensor(STDS)[:, None, None])
    _, files, labels = read_label_table(DATA / "val/multilabel.csv")
    assert torch.equal(sample["label"], torch.from_numpy(labels[0])) and sample["filename"].endswith(files[0])
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 6, 64, 64) and batch["label"].shape == (4, 3)


def test_bad_label_tables_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,water\nolinda_r000_c000.tif,2\n")
    with pytest.raises(ValueError,
                       match=rf"{re.escape(str(bad))}, line 2: expected labels of 0 or 1, got '2' in column 'water'"):
        read_label_table(bad)
    bad.write_text("name,water\n")
    with pytest.raises(ValueError, match="expected a header 'filename,<class>"):
        read_label_table(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("filename,water\nnot_there.tif,1\n")
    dm = MultiLabelChipDataModule(str(DATA / "train/images"), str(missing), str(DATA / "val/images"),
                                  str(DATA / "val/multilabel.csv"), MEANS, STDS)
    with pytest.raises(ValueError, match="1 chips of the label table are not in"):
        dm.setup("fit")
    other = tmp_path / "other.csv"
    other.write_text("filename,sea\nolinda_r256_c000.tif,1\n")
    dm = MultiLabelChipDataModule(str(DATA / "train/images"), str(DATA / "train/multilabel.csv"),
                                  str(DATA / "val/images"), str(other), MEANS, STDS)
    with pytest.raises(ValueError, match=r"names classes \['sea'\]; the other splits name"):
        dm.setup("fit")


def test_blank_lines_in_a_label_table_are_skipped_and_a_missing_value_names_file_and_line(tmp_path):
    """As pandas' read_csv: empty or whitespace-only lines are no rows, wherever they are; a row with a
    missing value (a short row, an empty cell, an all-empty ',,' row) is an error naming the file and line."""
    table = tmp_path / "labels.csv"
    table.write_text("filename,water,built_up\na.tif,1,0\n\n   \nb.tif,0,1\n\n")
    classes, files, labels = read_label_table(table)
    assert classes == ["water", "built_up"] and files == ["a.tif", "b.tif"]
    np.testing.assert_array_equal(labels, [[1, 0], [0, 1]])
    table.write_text("filename,water,built_up\na.tif,1,0\n\nb.tif,0\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(table))}, line 4: expected 3 values \(a filename and a 0/1 "
                                         r"label for each of \['water', 'built_up'\]\), got 2: \['b.tif', '0'\]"):
        read_label_table(table)
    table.write_text("filename,water,built_up\na.tif,1,0\n\nb.tif,,1\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(table))}, line 4: expected labels of 0 or 1, got an empty "
                                         r"value in column 'water' \(chip 'b.tif'\)"):
        read_label_table(table)
    table.write_text("filename,water,built_up\na.tif,1,0\n,,\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(table))}, line 3: the filename is empty"):
        read_label_table(table)


def test_task_trains_on_multi_hot_labels():
    task = tiny_task()
    x, y = torch.randn(4, 6, 32, 32), torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    out = task.model(x).output
    assert out.shape == (4, 2)
    loss = task.criterion(out, y)
    loss.backward()
    assert torch.isfinite(loss)


def test_multilabel_figure_titles_reference_and_predicted_labels():
    from terratorch_specmae.plotting import multilabel_figure

    image = torch.rand(2, 3, 8, 8)
    target = torch.tensor([[1, 0, 1], [0, 0, 0]])
    probabilities = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.4, 0.3]])
    fig = multilabel_figure(image, target, probabilities, [0, 1, 2], ["water", "vegetation", "built_up"])
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles == ["ref: water, built_up\npred: water 0.90, built_up 0.60", "ref: —\npred: —"]
