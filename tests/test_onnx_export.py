"""specmae-weights export-onnx: a fine-tuned segmentation / change-detection run → a checked .onnx or .pt2 file.

Each run is written as LightningCLI leaves one (``<run>/config.yaml``, ``<run>/checkpoints/last.ckpt``)
from a tiny TerraTorch task built in the test; the exported file is then run here, independently of
the export's own check, at batch sizes other than the traced one and compared with that task's model.
"""

import importlib.util
import json

import pytest
import tiny
import torch
import yaml
from terratorch.tasks import ClassificationTask, SemanticSegmentationTask

from terratorch_specmae import __version__, deployment
from terratorch_specmae.cli import main as weights_cli
from terratorch_specmae.tasks import SegmentationTask

MEANS = [76.2, 64.9, 63.2, 67.2, 91.3, 63.8]
STDS = [13.6, 15.3, 22.6, 17.9, 32.1, 31.0]
LANDSAT7 = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
CLASSES = ["water", "vegetation", "built_up"]
CD_ARGS = tiny.tiny_segmentation_args(
    backbone="sigmae_vit_tiny", backbone_patch_size=8, num_classes=2, backbone_use_temporal=True,
    backbone_temporal_pooling="diff", backbone_temporal_n_timestamps=2,
)  # fmt: skip
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs the export extra (onnx, onnxruntime, onnxscript)")


def write_run(root, task_cls=SemanticSegmentationTask, model_args=None, class_names=None, means=MEANS,
              class_path_in_ckpt=True, **data_args):  # fmt: skip
    """A fine-tuning run as LightningCLI leaves it; returns the checkpoint and the task's model (weights
    moved off their initialisation, so weights that are not loaded show)."""
    model_args = model_args or tiny.tiny_segmentation_args()
    task = task_cls(model_args=model_args, model_factory="EncoderDecoderFactory", class_names=class_names)
    task.model.eval()
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    class_path = f"{task_cls.__module__}.{task_cls.__name__}"
    hparams = {**({"_class_path": class_path} if class_path_in_ckpt else {}), **dict(task.hparams)}
    (root / "checkpoints").mkdir(parents=True)
    ckpt = root / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": task.state_dict(), "epoch": 7, "global_step": 70, "hyper_parameters": hparams}, ckpt)
    config = {
        "data": {"class_path": "terratorch.datamodules.GenericNonGeoSegmentationDataModule", "init_args": {
            "batch_size": 8, "num_classes": model_args["num_classes"], "train_data_root": "chips/train",
            "means": means, "stds": STDS, **data_args}},
        "model": {"class_path": class_path, "init_args": {"model_args": model_args}},
    }  # fmt: skip
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return ckpt, task.model


def pytorch_logits(model, x):
    with deployment.true_fp32(), torch.no_grad():
        return model(x).output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("runs")
    seg = write_run(root / "seg", class_names=CLASSES)
    cd = write_run(root / "cd", SegmentationTask, CD_ARGS, class_path_in_ckpt=False, expand_temporal_dimension=True)
    return {"seg": seg, "cd": cd}


def check_metadata(meta, task, backbone, layout, shape, num_classes, class_names):
    assert meta["task"] == task and meta["backbone"] == backbone
    assert json.loads(meta["bands"]) == LANDSAT7
    assert json.loads(meta["means"]) == MEANS and json.loads(meta["stds"]) == STDS
    assert meta["num_classes"] == str(num_classes)
    assert (json.loads(meta["class_names"]) if "class_names" in meta else None) == class_names
    assert meta["input_name"] == "image" and meta["output_name"] == "logits"
    assert meta["input_layout"] == layout and json.loads(meta["input_shape"]) == shape
    assert meta["terratorch_specmae_version"] == __version__
    assert meta["source_checkpoint"] == "last.ckpt (epoch 7, step 70)"


CASES = {  # run → (task, backbone, layout, input shape without the batch, classes, class names, extra CLI arguments)
    "seg": ("segmentation", "s2mae_vit_tiny", "NCHW", [6, 32, 32], 3, CLASSES, []),
    # change detection at another size than the training one, not square: the position table is resampled
    "cd": ("change_detection", "sigmae_vit_tiny", "NCTHW", [6, 2, 48, 64], 2, None, ["--image-size", "48", "64"]),
}


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("name", ["seg", "cd"])
def test_onnx_export_matches_pytorch_at_two_batch_sizes(runs, name, tmp_path, capsys):
    import onnxruntime

    ckpt, model = runs[name]
    task, backbone, layout, shape, num_classes, class_names, extra = CASES[name]
    out = tmp_path / "model.onnx"
    weights_cli(["export-onnx", str(ckpt), str(out), *extra])
    printed = capsys.readouterr().out
    assert f"onnx model ({task}, {backbone}" in printed and "max abs difference" in printed
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.shape == ["batch", *shape]
    assert outp.name == "logits" and outp.shape == ["batch", num_classes, *shape[-2:]]
    for batch_size in (1, 4):  # neither is the traced batch (2): the batch axis is dynamic
        x = torch.randn(batch_size, *shape)
        got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
        expected = pytorch_logits(model, x)
        assert got.shape == (batch_size, num_classes, *shape[-2:])
        assert expected.abs().max() > 0.1  # real logits, not a degenerate model
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    check_metadata(session.get_modelmeta().custom_metadata_map, task, backbone, layout, ["batch", *shape],
                   num_classes, class_names)  # fmt: skip
    assert deployment.read_metadata(out) == session.get_modelmeta().custom_metadata_map
    with pytest.raises(Exception, match=r"Got invalid dimensions for input: image"):  # H and W are fixed
        session.run(None, {"image": torch.randn(1, *shape[:-2], 56, 56).numpy()})

    if name == "seg":  # an existing file is refused, before the checkpoint is read
        before = out.read_bytes()
        with pytest.raises(SystemExit) as exit_info:
            weights_cli(["export-onnx", str(ckpt), str(out)])
        assert exit_info.value.code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
        assert out.read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seg", "cd"])
def test_torch_export_matches_pytorch_at_two_batch_sizes(runs, name, tmp_path, capsys):
    ckpt, model = runs[name]
    task, backbone, layout, shape, num_classes, class_names, extra = CASES[name]
    out = tmp_path / "model.pt2"
    if name == "seg":  # an existing file is replaced with --overwrite
        out.write_bytes(b"an older export")
    weights_cli(
        ["export-onnx", str(ckpt), str(out), "--format", "torch-export", *extra, *(["--overwrite"] * (name == "seg"))]
    )
    assert f"torch-export model ({task}, {backbone}" in capsys.readouterr().out
    program = torch.export.load(out).module()
    for batch_size in (1, 4):
        x = torch.randn(batch_size, *shape)
        with deployment.true_fp32(), torch.no_grad():
            got = program(x)
        torch.testing.assert_close(got, pytorch_logits(model, x), atol=1e-4, rtol=1e-4)
    check_metadata(deployment.read_metadata(out), task, backbone, layout, ["batch", *shape], num_classes, class_names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt2"]  # no temporaries left
    with pytest.raises(SystemExit):
        weights_cli(["export-onnx", str(ckpt), str(out), "--format", "torch-export"])  # exists: refused


@needs_onnx
@pytest.mark.slow
def test_a_difference_beyond_the_tolerance_fails_and_writes_nothing(runs, tmp_path, monkeypatch):
    ckpt, _ = runs["seg"]
    real_runner = deployment._onnx_runner

    def drifting_runner(path):  # an exporter bug: the file's logits drift by 1e-3
        run, runtime = real_runner(path)
        return (lambda x: run(x) + 1e-3), runtime

    monkeypatch.setattr(deployment, "_onnx_runner", drifting_runner)
    out = tmp_path / "model.onnx"
    with pytest.raises(deployment.ExportMismatchError, match=r"onnxruntime .* differs from PyTorch beyond the tolerance "
                       r"at batch size 1: .* max abs difference 0\.001.*expected \|exported − PyTorch\| <= 0\.0001 \+ "
                       r"0\.0001·\|PyTorch\|\. Nothing was written"):  # fmt: skip
        deployment.export_onnx(ckpt, out)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_verify_names_the_difference_shape_and_nans(runs):
    ckpt, _ = runs["seg"]
    finetuned = deployment.load_finetuned(ckpt)
    assert finetuned.input_layout == "NCHW" and finetuned.class_names == CLASSES

    def eager(x):
        with deployment.true_fp32(), torch.no_grad():
            return finetuned.model(x)

    assert deployment.verify(finetuned, eager, "eager") == 0.0
    assert 0 < deployment.verify(finetuned, lambda x: eager(x) + 5e-5, "eager + 5e-5") < 1e-4
    with pytest.raises(deployment.ExportMismatchError, match=r"max abs difference 0\.01 "):
        deployment.verify(finetuned, lambda x: eager(x) + 0.01, "drift")
    with pytest.raises(deployment.ExportMismatchError, match="differs from PyTorch beyond the tolerance"):
        deployment.verify(finetuned, lambda x: eager(x).index_fill(1, torch.tensor([0]), float("nan")), "nans")
    with pytest.raises(
        deployment.ExportMismatchError, match=r"gave logits of shape \(1, 3, 16, 16\) .* PyTorch gives \(1, 3, 32, 32\)"
    ):
        deployment.verify(finetuned, lambda x: eager(x)[..., :16, :16], "cropped")


def test_bad_inputs_name_what_was_expected(runs, tmp_path, capsys):
    ckpt, _ = runs["seg"]
    # formats and output paths: refused before the checkpoint is read
    with pytest.raises(ValueError, match=r"Unknown export format 'tflite'; expected one of: onnx, torch-export"):
        deployment.export_for_deployment(ckpt, tmp_path / "m.onnx", "tflite")
    with pytest.raises(SystemExit):
        weights_cli(["export-onnx", str(ckpt), str(tmp_path / "m.onnx"), "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        weights_cli(["export-onnx", str(ckpt), str(tmp_path / "m.bin")])
    assert "Cannot tell the export format from" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"A torch-export export is written to a \.pt2 file; got .*m\.onnx"):
        deployment.export_torch_program(ckpt, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="atol must be a finite number >= 0, got -1"):
        deployment.export_torch_program(ckpt, tmp_path / "m.pt2", atol=-1)

    # checkpoints that are not a fine-tuning run of ours
    def ckpt_with(hparams, name):
        path = tmp_path / name
        torch.save({"state_dict": {}, "hyper_parameters": hparams}, path)
        return path

    pretrain = ckpt_with(
        {"model_factory": "FullModelFactory", "model_args": {"model": "s2mae_vit_tiny_mae"}}, "pre.ckpt"
    )
    with pytest.raises(
        ValueError, match="is a pretraining checkpoint .*Export pretrained weights with `specmae export`"
    ):
        deployment.export_onnx(pretrain, tmp_path / "m.onnx")
    other = ckpt_with(
        {"model_factory": "EncoderDecoderFactory", "model_args": {"backbone": "prithvi_eo_v2_300"}}, "o.ckpt"
    )
    with pytest.raises(ValueError, match=r"not a fine-tuning run of ours: expected model_factory EncoderDecoderFactory "
                       r"with a backbone among s2mae_vit_tiny, .*; got model_factory 'EncoderDecoderFactory', "
                       r"backbone 'prithvi_eo_v2_300'"):  # fmt: skip
        deployment.load_finetuned(other)
    plain = tmp_path / "plain.pt"
    torch.save({"encoder.weight": torch.zeros(1)}, plain)
    with pytest.raises(ValueError, match=r"not a Lightning checkpoint of a fine-tuning run: expected 'state_dict' and "
                       r"'hyper_parameters' .*, got \['encoder.weight'\]"):  # fmt: skip
        deployment.load_finetuned(plain)
    classify = write_run(tmp_path / "cls", ClassificationTask, {
        "backbone": "s2mae_vit_tiny", **{f"backbone_{k}": v for k, v in tiny.TINY_ENCODER.items()},
        "decoder": "IdentityDecoder", "num_classes": 3})[0]  # fmt: skip
    with pytest.raises(ValueError, match=r"is a terratorch.tasks.classification_tasks.ClassificationTask run; .* expected "
                       r"terratorch.tasks.SemanticSegmentationTask or a subclass"):  # fmt: skip
        deployment.load_finetuned(classify)

    # the run's config: missing, or without the normalisation statistics the metadata needs
    with pytest.raises(
        FileNotFoundError, match=r"The run's config .*nowhere.yaml' \(given as --config\) does not exist"
    ):
        deployment.load_finetuned(ckpt, config=tmp_path / "nowhere.yaml")
    lone = tmp_path / "lone" / "last.ckpt"
    lone.parent.mkdir()
    lone.write_bytes(ckpt.read_bytes())
    with pytest.raises(
        FileNotFoundError, match=r"config.yaml' \(beside the checkpoint's folder \(lone/\)\) does not exist"
    ):
        deployment.load_finetuned(lone)
    no_stats = tmp_path / "no_stats.yaml"
    no_stats.write_text(yaml.safe_dump({"data": {"init_args": {"batch_size": 8}}}))
    with pytest.raises(
        ValueError, match=r"says nothing of the input normalisation: expected per-band data.init_args.means"
    ):
        deployment.load_finetuned(ckpt, config=no_stats)
    short = write_run(tmp_path / "short", means=MEANS[:4])[0]
    with pytest.raises(ValueError, match=r"The run's means have 4 values for the model's 6 bands"):
        deployment.load_finetuned(short)
    with pytest.raises(ValueError, match=r"image_size \(4, 4\) is smaller than one 8×8 patch"):
        deployment.load_finetuned(ckpt, image_size=4)
    with pytest.raises(ValueError, match=r"pads 48×40 images to 48×48 .* expected an image size it does not pad, "
                       r"e.g. 48×48 \(--image-size 48 48\)"):  # fmt: skip
        deployment.load_finetuned(ckpt, image_size=(48, 40))
    assert list((tmp_path).glob("*.onnx")) == [] and list(tmp_path.glob("*.pt2")) == []


def test_the_rebuilt_model_is_the_checkpoints_without_run_switches(runs, tmp_path):
    ckpt, model = runs["seg"]
    raw = torch.load(ckpt, weights_only=True)
    raw["hyper_parameters"]["model_args"].update(backbone_compile=True, backbone_grad_checkpointing=True,
                                                 backbone_ckpt_path=str(tmp_path / "gone.ckpt"))  # fmt: skip
    switched = tmp_path / "run" / "checkpoints" / "last.ckpt"
    switched.parent.mkdir(parents=True)
    torch.save(raw, switched)
    (tmp_path / "run" / "config.yaml").write_text((ckpt.parent.parent / "config.yaml").read_text())
    finetuned = deployment.load_finetuned(switched)  # no pretraining file is read, nothing is compiled
    encoder = finetuned.model.model.encoder
    assert encoder.compile_options is None and not encoder.grad_checkpointing and not finetuned.model.training
    x = torch.randn(2, 6, 32, 32)
    with deployment.true_fp32(), torch.no_grad():
        torch.testing.assert_close(finetuned.model(x), pytorch_logits(model, x), atol=0, rtol=0)
    assert finetuned.metadata()["input_shape"] == '["batch", 6, 32, 32]'
    assert deployment.load_finetuned(switched, image_size=(48, 64)).input_shape == (6, 48, 64)


@needs_onnx
@pytest.mark.slow
def test_an_export_whose_path_another_run_took_meanwhile_replaces_nothing(runs, tmp_path, monkeypatch, capsys):
    """Two exports into one new path: the one that finishes second fails clearly and the first's file stays."""
    ckpt, _ = runs["seg"]
    out = tmp_path / "model.onnx"
    real_runner = deployment._onnx_runner

    def meanwhile(path):  # while this export checks its file, another run's export lands on the same path
        out.write_bytes(b"the other run's model")
        return real_runner(path)

    monkeypatch.setattr(deployment, "_onnx_runner", meanwhile)
    with pytest.raises(SystemExit) as exit_info:
        weights_cli(["export-onnx", str(ckpt), str(out)])
    assert exit_info.value.code == 2
    assert "model.onnx' appeared while this output was being written" in capsys.readouterr().err
    assert out.read_bytes() == b"the other run's model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
