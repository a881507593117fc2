"""End-to-end runs of the stock ``terratorch`` command (slow).

They prove that our configs run with plain ``terratorch fit -c …``, that a Prithvi-style
config runs with our backbone name and one extra line, and that encoder weights travel from
a pretraining checkpoint into a fine-tuning run.

Most runs are in this process (tests/cli_runner.py's ``run_cli``: what the command does,
without the ~15 s a fresh Python spends importing TerraTorch). A fresh ``terratorch`` process
(``terratorch_process``) where the test is about one: the Prithvi-config tests (our backbone
registered at start-up through the config's extra line, or through
TERRATORCH_CUSTOM_MODULE_PATH; plain ``terratorch fit -c`` from a fresh process), the Hub loads
(HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE are read when huggingface_hub is imported) and the
DDP runs (Lightning launches the other rank from the command line); examples/gallery.py's code
runs here with its ``terratorch`` commands in this process too. test_run_reliability.py runs a shipped config from a fresh process
too (the same-seed test's first run).
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from cli_runner import ROOT, only, run_cli, run_script, terratorch_process
from data.bigearthnet.data import make_bigearthnet
from data.eurosat.data import make_eurosat
from data.oscd.data import make_oscd
from data.ssl4eo.data import make_ssl4eo

QUICK = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """Pretrain 1 epoch with configs/specmae_pretrain_s2mae.yaml; return its checkpoint."""
    out = tmp_path_factory.mktemp("pretrain")
    run_cli("fit", "-c", "configs/specmae_pretrain_s2mae.yaml", *QUICK, f"--trainer.default_root_dir={out}")
    pngs = list(out.rglob("reconstructions/reconstruction_epoch000.png"))
    assert pngs and pngs[0].stat().st_size > 10_000, "the reconstruction callback wrote no picture"
    return only(out.rglob("last.ckpt"))


def test_pretraining_checkpoint_holds_the_mae(pretrained):
    state = torch.load(pretrained, map_location="cpu", weights_only=True)["state_dict"]
    assert "model.encoder.tokenizer.proj.weight" in state and "model.decoder.pred.weight" in state


@pytest.mark.parametrize("subcommand", ["predict", "fit"])
def test_a_pretraining_checkpoint_under_a_segmentation_config_is_refused(pretrained, subcommand, tmp_path):
    """LightningCLI builds the task saved in a --ckpt_path checkpoint, not the config's: a segmentation
    config with a pretraining checkpoint would go on pretraining (fit) or write reconstructions (predict)."""
    chips = ROOT / "examples/data/olinda_l7/val/images"
    extra = [f"--data.init_args.predict_data_root={chips}", f"--predict_output_dir={tmp_path / 'maps'}"]
    message = (
        r"--ckpt_path .*last\.ckpt is a pretraining checkpoint \(SpectralMAETask\), but the config "
        r".*configs/specmae_seg\.yaml names the task terratorch\.tasks\.SemanticSegmentationTask.*"
        r"--model\.init_args\.model_args\.backbone_ckpt_path=.*last\.ckpt"
    )
    with pytest.raises(ValueError, match=message):
        run_cli(subcommand, "-c", "configs/specmae_seg.yaml", f"--ckpt_path={pretrained}", *QUICK,
                f"--trainer.default_root_dir={tmp_path}", *(extra if subcommand == "predict" else []))
    assert not (tmp_path / "maps").exists()
    if subcommand == "predict":
        return
    # under its own config the checkpoint is what --ckpt_path is for
    cli = run_cli("validate", "-c", "configs/specmae_pretrain_s2mae.yaml", f"--ckpt_path={pretrained}",
                  "--trainer.limit_val_batches=2", f"--trainer.default_root_dir={tmp_path / 'own'}")
    assert type(cli.model).__name__ == "SpectralMAETask"


@pytest.fixture(scope="module")
def fit_once(tmp_path_factory):
    """``fit(config, *args)``: ``terratorch fit -c config QUICK *args`` run once per distinct command in
    this module; returns the run's root folder, which the tests that share it only read."""
    roots: dict[tuple[str, ...], Path] = {}

    def fit(config: str, *args: str) -> Path:
        if (config, *args) not in roots:
            root = tmp_path_factory.mktemp(Path(config).stem)
            run_cli("fit", "-c", config, *QUICK, f"--trainer.default_root_dir={root}", *args)
            roots[(config, *args)] = root
        return roots[(config, *args)]

    return fit


@pytest.fixture(scope="module")
def seg_finetuned(pretrained, fit_once) -> Path:
    """configs/specmae_seg.yaml fine-tuned from the pretraining checkpoint, encoder frozen; its root folder."""
    return fit_once(
        "configs/specmae_seg.yaml",
        f"--model.init_args.model_args.backbone_ckpt_path={pretrained}",
        "--model.init_args.freeze_backbone=true",
    )


def test_segmentation_fine_tunes_from_the_pretraining_checkpoint(pretrained, seg_finetuned, tmp_path):
    """With a frozen encoder the fine-tuned checkpoint must hold exactly the pretrained encoder."""
    finetuned = torch.load(only(seg_finetuned.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    source = torch.load(pretrained, map_location="cpu", weights_only=True)["state_dict"]
    encoder_keys = [k for k in source if k.startswith("model.encoder.")]
    assert len(encoder_keys) > 100
    for key in encoder_keys:  # pretraining: task.model.encoder; fine-tuning: task.model.encoder (the backbone)
        assert torch.equal(finetuned[key], source[key]), key
    decoder = [k for k in finetuned if k.startswith("model.decoder.")]
    assert decoder, "the fine-tuned model has a segmentation decoder"
    assert list(seg_finetuned.rglob("predictions/segmentation_epoch000.png"))

    # terratorch predict writes one class map per chip, georeferenced like its input
    chips = ROOT / "examples/data/olinda_l7/val/images"
    out = tmp_path / "maps"
    run_cli(
        "predict",
        "-c",
        "configs/specmae_seg.yaml",
        f"--ckpt_path={only(seg_finetuned.rglob('last.ckpt'))}",
        f"--predict_output_dir={out}",
        f"--data.init_args.predict_data_root={chips}",
        f"--trainer.default_root_dir={tmp_path / 'predict'}",
    )
    maps = sorted(out.glob("*_pred.tif"))
    assert len(maps) == len(list(chips.glob("*.tif")))
    with rasterio.open(maps[0]) as pred, rasterio.open(chips / maps[0].name.replace("_pred", "")) as src:
        assert pred.crs == src.crs and pred.transform == src.transform and pred.shape == src.shape
        assert set(np.unique(pred.read(1))) <= {0, 1, 2}


def test_classification_config(tmp_path):
    run_cli("fit", "-c", "configs/specmae_cls.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}")
    assert list(tmp_path.rglob("last.ckpt"))
    assert list(tmp_path.rglob("predictions/classification_epoch000.png"))


def test_prithvi_config_with_our_backbone_and_one_extra_line(tmp_path):
    """tests/data/prithvi_seg.yaml is a stock Prithvi UperNet config; we swap the backbone name and add one line."""
    text = (ROOT / "tests/data/prithvi_seg.yaml").read_text()
    assert "backbone: prithvi_eo_tiny" in text
    swapped = text.replace("backbone: prithvi_eo_tiny", "backbone: s2mae_vit_tiny")
    extra = "    - class_path: terratorch_specmae.callbacks.PredictionPNGs\n"
    swapped = swapped.replace("  callbacks:\n", "  callbacks:\n" + extra)
    assert len(swapped.splitlines()) == len(text.splitlines()) + 1
    config = tmp_path / "swapped.yaml"
    config.write_text(swapped)
    # a fresh process: the extra line's import is what registers our backbone before the model is built
    terratorch_process("fit", "-c", str(config), *QUICK, f"--trainer.default_root_dir={tmp_path}")
    saved = yaml.safe_load(only(tmp_path.rglob("config.yaml")).read_text())
    assert saved["model"]["init_args"]["model_args"]["backbone"] == "s2mae_vit_tiny"
    assert list(tmp_path.rglob("*.ckpt"))


def test_reconstruction_example_script(pretrained, tmp_path, monkeypatch, capsys):
    """examples/reconstruct.py draws a pretraining checkpoint's reconstructions (run in-process)."""
    import runpy

    out = tmp_path / "reconstruction.png"
    monkeypatch.setattr(sys, "argv", ["reconstruct.py", str(pretrained), "--out", str(out), "--num", "2"])
    runpy.run_path(str(ROOT / "examples/reconstruct.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert out.stat().st_size > 10_000
    rmse_lines = [line for line in printed.splitlines() if "masked-pixel RMSE" in line]
    assert len(rmse_lines) == 6  # one per Landsat band
    assert all(float(line.split()[-2]) > 0 for line in rmse_lines)


def test_prithvi_config_without_the_extra_line_needs_the_environment_variable(tmp_path):
    """The alternative to the extra line: TERRATORCH_CUSTOM_MODULE_PATH; with neither, TerraTorch cannot find us."""
    import terratorch_specmae

    swapped = (ROOT / "tests/data/prithvi_seg.yaml").read_text().replace("backbone: prithvi_eo_tiny", "backbone: s2mae_vit_tiny")
    config = tmp_path / "swapped.yaml"
    config.write_text(swapped)
    args = ("fit", "-c", str(config), "--trainer.fast_dev_run=true", f"--trainer.default_root_dir={tmp_path}")
    failed = terratorch_process(*args, check=False)  # fresh processes: registration happens at start-up
    assert failed.returncode != 0 and "s2mae_vit_tiny could not be instantiated" in failed.stderr
    package_dir = str(Path(terratorch_specmae.__file__).parent)
    terratorch_process(*args, env={"TERRATORCH_CUSTOM_MODULE_PATH": package_dir})


@pytest.fixture(scope="module")
def sigmae_pretrained(tmp_path_factory) -> Path:
    """Pretrain with configs/specmae_pretrain_sigmae.yaml (2 short epochs); return its checkpoint."""
    out = tmp_path_factory.mktemp("pretrain_sigmae")
    run_cli(
        "fit", "-c", "configs/specmae_pretrain_sigmae.yaml", "--trainer.max_epochs=2", "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={out}",
    )
    pngs = sorted(p.name for p in out.rglob("saliency/*.png"))
    assert pngs == ["saliency_progress000_step000000.png", "saliency_progress050_step000002.png",
                    "saliency_progress100_step000004.png"], pngs
    return only(out.rglob("last.ckpt"))


def test_sigmae_pretraining_checkpoint_holds_a_2d_patch_mae(sigmae_pretrained):
    state = torch.load(sigmae_pretrained, map_location="cpu", weights_only=True)["state_dict"]
    assert state["model.encoder.tokenizer.proj.weight"].shape == (192, 1, 6, 8, 8)  # one token spans all 6 bands
    assert state["model.decoder.pred.weight"].shape == (6 * 8 * 8, 512)


def test_fine_tune_configs_take_a_sigmae_backbone_by_name(sigmae_pretrained, tmp_path):
    sigmae = ["--model.init_args.model_args.backbone=sigmae_vit_tiny"]  # the configs set backbone_patch_size: 8
    seg = tmp_path / "seg"
    run_cli(
        "fit", "-c", "configs/specmae_seg.yaml", *QUICK, *sigmae, f"--trainer.default_root_dir={seg}",
        f"--model.init_args.model_args.backbone_ckpt_path={sigmae_pretrained}", "--model.init_args.freeze_backbone=true",
    )
    finetuned = torch.load(only(seg.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    source = torch.load(sigmae_pretrained, map_location="cpu", weights_only=True)["state_dict"]
    encoder_keys = [k for k in source if k.startswith("model.encoder.")]
    assert len(encoder_keys) > 100
    assert all(torch.equal(finetuned[k], source[k]) for k in encoder_keys)
    cls = tmp_path / "cls"
    run_cli("fit", "-c", "configs/specmae_cls.yaml", *QUICK, *sigmae, f"--trainer.default_root_dir={cls}")
    saved = yaml.safe_load(only(cls.rglob("config.yaml")).read_text())
    assert saved["model"]["init_args"]["model_args"]["backbone"] == "sigmae_vit_tiny"
    assert list(cls.rglob("predictions/classification_epoch000.png"))


def test_mrs_pretraining_then_hsi_pixel_classification_and_scene_map(tmp_path):
    """MRS config → SS-MAE checkpoint → HSI classification config (frozen backbone) → terratorch predict map."""
    pre = tmp_path / "pre"
    run_cli("fit", "-c", "configs/specmae_pretrain_mrs.yaml", *QUICK, f"--trainer.default_root_dir={pre}")
    ckpt = only(pre.rglob("last.ckpt"))
    source = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert source["model.spectral.encoder.tokenizer.proj.weight"].shape == (256, 1, 1, 7, 7)  # Linear(P·P → D) per band
    assert source["model.spatial.encoder.tokenizer.proj.weight"].shape == (256, 1, 49, 1, 1)  # 1×1 conv over 49 bands

    cls = tmp_path / "cls"
    run_cli(
        "fit", "-c", "configs/specmae_hsi_cls.yaml", *QUICK, f"--trainer.default_root_dir={cls}",
        f"--model.init_args.model_args.backbone_ckpt_path={ckpt}", "--model.init_args.freeze_backbone=true",
    )
    finetuned = torch.load(only(cls.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    for branch in ("spatial", "spectral"):
        keys = [k for k in source if k.startswith(f"model.{branch}.encoder.")]
        assert len(keys) > 20
        for key in keys:  # pretraining: model.<branch>.encoder.*; fine-tuning: model.encoder.<branch>.*
            assert torch.equal(finetuned[key.replace(f"model.{branch}.encoder.", f"model.encoder.{branch}.")], source[key])

    maps = tmp_path / "maps"
    run_cli(
        "predict", "-c", "configs/specmae_hsi_cls.yaml", f"--ckpt_path={only(cls.rglob('last.ckpt'))}",
        f"--predict_output_dir={maps}", f"--trainer.default_root_dir={tmp_path / 'predict'}",
    )
    assert sorted(p.name for p in maps.iterdir()) == ["class_map.png", "class_map.tif"]  # nothing per pixel
    with rasterio.open(maps / "class_map.tif") as pred, rasterio.open(ROOT / "examples/data/hsi_synthetic/hsi.tif") as src:
        assert pred.crs == src.crs and pred.transform == src.transform and pred.shape == src.shape
        assert set(np.unique(pred.read(1))) <= set(range(6))


def test_mrs_example_script_shows_less_leakage_than_random(tmp_path):
    out = tmp_path / "mrs.png"  # the script, run as __main__ in this process
    stdout = run_script(ROOT / "examples/mrs_masking.py", "--landsat", "--out", str(out), cwd=tmp_path)
    leak = {line.split(":")[0].strip(): float(line.split("mean cosine ")[1].split(",")[0])
            for line in stdout.splitlines() if "mean cosine" in line}
    assert leak["MRS"] < leak["random"] - 0.1  # the masked bands' best visible stand-in is less similar under MRS
    assert out.stat().st_size > 20_000


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_multilabel_config_with_either_backbone_by_name(backbone, tmp_path):
    run_cli("fit", "-c", "configs/specmae_multilabel.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}",
            f"--model.init_args.model_args.backbone={backbone}")
    saved = yaml.safe_load(only(tmp_path.rglob("config.yaml")).read_text())
    assert saved["model"]["init_args"]["model_args"]["backbone"] == backbone
    state = torch.load(only(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    # three labels from 192 pooled channels (by shape: TerraTorch's head layout is its own)
    assert [tuple(v.shape) for k, v in state.items() if k.startswith("model.head") and v.ndim == 2][-1] == (3, 192)
    patch_embed = state["model.encoder.tokenizer.proj.weight"]
    assert patch_embed.shape == ((192, 1, 3, 8, 8) if backbone.startswith("s2mae") else (192, 1, 6, 8, 8))
    assert list(tmp_path.rglob("predictions/multilabel_epoch000.png"))


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_change_detection_config_with_either_backbone_by_name(backbone, fit_once):
    root = fit_once("configs/specmae_cd.yaml", f"--model.init_args.model_args.backbone={backbone}")
    state = torch.load(only(root.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    # one encoder, shared by both dates (TerraTorch's TemporalWrapper around our backbone; its prefix is its own)
    proj = [k for k in state if k.endswith("tokenizer.proj.weight")]
    assert len(proj) == 1 and proj[0].startswith("model.encoder."), proj
    assert list(root.rglob("predictions/segmentation_epoch000.png"))


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_object_extraction_config_with_either_backbone_by_name(backbone, tmp_path):
    run_cli("fit", "-c", "configs/specmae_objext.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}",
            f"--model.init_args.model_args.backbone={backbone}", "--model.init_args.freeze_backbone=true")
    state = torch.load(only(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    heads = [tuple(v.shape) for k, v in state.items() if k.startswith("model.head") and v.ndim == 4]
    assert heads[-1] == (2, 128, 1, 1)  # other / water, by shape (TerraTorch's head layout is its own)
    assert list(tmp_path.rglob("predictions/segmentation_epoch000.png"))


@pytest.mark.parametrize("backbone", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_object_detection_config_with_either_backbone_by_name(backbone, tmp_path):
    run_cli("fit", "-c", "configs/specmae_det.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}",
            f"--model.init_args.model_args.backbone={backbone}")
    state = torch.load(only(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    # Faster R-CNN around our encoder + TerraTorch's FPN neck; 3 classes (background, water body, green space)
    assert "model.torchvision_model.backbone.backbone.tokenizer.proj.weight" in state
    assert state["model.torchvision_model.roi_heads.box_predictor.cls_score.weight"].shape[0] == 3
    assert any(".fpn." in k for k in state)
    assert list(tmp_path.rglob("predictions/detection_epoch000.png"))


@pytest.mark.parametrize("config", ["specmae_seg_probe", "specmae_multilabel_linear_probe", "specmae_seg_lora"])
def test_probe_and_lora_configs_keep_the_pretrained_encoder(config, pretrained, tmp_path):
    """Frozen probes and LoRA fine-tune around the pretrained encoder without moving its weights."""
    run_cli("fit", "-c", f"configs/{config}.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}",
            f"--model.init_args.model_args.backbone_ckpt_path={pretrained}")
    tuned = torch.load(only(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    source = torch.load(pretrained, map_location="cpu", weights_only=True)["state_dict"]
    encoder = {k[len("model.encoder."):]: v for k, v in source.items() if k.startswith("model.encoder.")}
    if config != "specmae_seg_lora":
        for key, value in encoder.items():
            assert torch.equal(tuned[f"model.encoder.{key}"], value), key
        return
    lora = {k[len("model.encoder.base_model.model."):]: v for k, v in tuned.items() if k.startswith("model.encoder.")}
    assert any("lora_B" in k for k in lora) and any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)
    for key, value in encoder.items():
        if key.endswith("attn.qkv.weight") or key.endswith("attn.qkv.bias"):  # split into q/k/v by replace_qkv
            stem, kind = key.rsplit(".", 1)
            parts = [lora.get(f"{stem}.{p}_linear.base_layer.{kind}", lora.get(f"{stem}.{p}_linear.{kind}")) for p in "qkv"]
            assert torch.equal(torch.cat(parts), value), key
        else:
            assert torch.equal(lora[key], value), key


@pytest.fixture(scope="module")
def fake_benchmarks(tmp_path_factory) -> Path:
    """Tiny EuroSAT / BigEarthNet / OSCD in TorchGeo's on-disk layout (tests/data/<name>/data.py)."""
    root = tmp_path_factory.mktemp("fake_benchmarks")
    for name, make in (("eurosat", make_eurosat), ("bigearthnet", make_bigearthnet), ("oscd", make_oscd)):
        make(root / name)
    return root


@pytest.mark.parametrize("name, classes", [("eurosat", 10), ("bigearthnet", 19), ("oscd", 2)])
def test_benchmark_configs_run_on_fake_files_in_torchgeos_layout(name, classes, fake_benchmarks, tmp_path):
    """The papers' benchmark configs, as shipped but for a tiny backbone and the fake data root."""
    fit = run_cli(
        "fit", "-c", f"configs/benchmarks/{name}.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}",
        f"--data.init_args.root={fake_benchmarks / name}", "--data.init_args.download=false",
        "--data.init_args.num_workers=0", "--data.init_args.batch_size=2", "--trainer.precision=32",
        "--model.init_args.model_args.backbone=s2mae_vit_tiny",
    )  # fmt: skip
    assert fit.trainer.global_step > 0  # optimizer steps happened: the epoch trained, not just "passed"
    ckpt = only(tmp_path.rglob("last.ckpt"))
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] == fit.trainer.global_step
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert state["model.head.head.2.weight"].shape[0] == classes
    patch_embed = next(v for k, v in state.items() if k.endswith("tokenizer.proj.weight"))
    assert patch_embed.shape == (192, 1, 3, 8, 8)  # cube tokens over the 12 named bands
    run_cli(
        "test", "-c", f"configs/benchmarks/{name}.yaml", f"--ckpt_path={ckpt}", f"--trainer.default_root_dir={tmp_path}",
        f"--data.init_args.root={fake_benchmarks / name}", "--data.init_args.download=false",
        "--data.init_args.num_workers=0", "--data.init_args.batch_size=2", "--trainer.precision=32",
        "--model.init_args.model_args.backbone=s2mae_vit_tiny",
    )  # fmt: skip


def mosaic_of(chip_dir: Path, path: Path) -> tuple[dict, np.ndarray]:
    """Mosaic the chips of ``chip_dir`` into one GeoTIFF scene at ``path``; return its profile and data."""
    import rasterio.merge

    sources = [rasterio.open(c) for c in sorted(chip_dir.glob("*.tif"))]
    mosaic, transform = rasterio.merge.merge(sources)
    profile = {**sources[0].profile, "height": mosaic.shape[1], "width": mosaic.shape[2], "transform": transform}
    descriptions = sources[0].descriptions
    for src in sources:
        src.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mosaic)
        dst.descriptions = descriptions
    return profile, mosaic


def test_tiled_prediction_of_a_scene_larger_than_the_chips(seg_finetuned, tmp_path, monkeypatch):
    """terratorch predict on the validation area mosaicked into one scene, by TerraTorch's
    tiled_inference (switched on at predict time by our TiledPrediction callback) and by our
    flat-memory SceneTilesDataModule + SceneWriter (with the fine-tuned segmentation model of
    test_segmentation_fine_tunes_from_the_pretraining_checkpoint)."""
    import terratorch.tasks.segmentation_tasks as segmentation_tasks

    tiled_calls = []
    real_tiled_inference = segmentation_tasks.tiled_inference

    def spy(model_forward, x, **kwargs):
        tiled_calls.append((tuple(x.shape), kwargs))
        return real_tiled_inference(model_forward, x, **kwargs)

    monkeypatch.setattr(segmentation_tasks, "tiled_inference", spy)
    ckpt = only(seg_finetuned.rglob("last.ckpt"))
    scene = tmp_path / "scene" / "olinda_val_area.tif"
    profile, mosaic = mosaic_of(ROOT / "examples/data/olinda_l7/val/images", scene)
    assert mosaic.shape[1:] == (96, 349)  # larger than the 64 px training chips, and not a multiple of them
    common = [
        "predict", "-c", "configs/specmae_seg.yaml", f"--ckpt_path={ckpt}",
        f"--data.init_args.predict_data_root={scene.parent}",
    ]  # fmt: skip

    # Why the callback exists: the model argument after --ckpt_path is replaced by the checkpoint's
    # saved hyper-parameters (LightningCLI), so this prediction is not tiled.
    run_cli(
        *common, f"--predict_output_dir={tmp_path / 'untiled'}",
        "--model.init_args.tiled_inference_parameters={h_crop: 64, w_crop: 64, h_stride: 48, w_stride: 48}",
        f"--trainer.default_root_dir={tmp_path / 'predict_untiled'}",
    )  # fmt: skip
    assert tiled_calls == []

    out = tmp_path / "maps"
    run_cli(
        *common, f"--predict_output_dir={out}",
        "--trainer.callbacks+=terratorch_specmae.callbacks.TiledPrediction",
        "--trainer.callbacks.init_args.crop=64", "--trainer.callbacks.init_args.stride=48",
        f"--trainer.default_root_dir={tmp_path / 'predict'}",
    )  # fmt: skip
    assert len(tiled_calls) == 1  # the one scene, one batch: tiled
    shape, parameters = tiled_calls[0]
    assert shape[-2:] == (96, 349)
    assert {k: parameters[k] for k in ("h_crop", "w_crop", "h_stride", "w_stride")} == {
        "h_crop": 64, "w_crop": 64, "h_stride": 48, "w_stride": 48,
    }  # fmt: skip
    with rasterio.open(only(out.glob("*_pred.tif"))) as pred:
        assert pred.shape == (96, 349) and pred.crs == profile["crs"] and pred.transform == profile["transform"]
        assert set(np.unique(pred.read(1))) <= {0, 1, 2}

    tiles_out = tmp_path / "tile_maps"
    run_cli(
        "predict", "-c", "configs/specmae_seg.yaml", "-c", "configs/predict_scene.yaml", f"--ckpt_path={ckpt}",
        f"--data.init_args.scene={scene}", f"--predict_output_dir={tiles_out}",
        f"--trainer.default_root_dir={tmp_path / 'predict_tiles'}",
    )
    assert sorted(p.name for p in tiles_out.iterdir()) == ["olinda_val_area_pred.png", "olinda_val_area_pred.tif"]
    with rasterio.open(tiles_out / "olinda_val_area_pred.tif") as pred:
        assert pred.shape == (96, 349) and pred.crs == profile["crs"] and pred.transform == profile["transform"]
        classes = pred.read(1)
    assert set(np.unique(classes)) <= {0, 1, 2}


def test_change_detection_of_a_scene_larger_than_the_chips(fit_once, tmp_path):
    """Flat-memory tiled change detection: a fine-tuned siamese model maps a mosaicked pair of dates
    (the S2MAE one of test_change_detection_config_with_either_backbone_by_name)."""
    fit = fit_once("configs/specmae_cd.yaml", "--model.init_args.model_args.backbone=s2mae_vit_tiny")
    pair = tmp_path / "scene" / "olinda_val_pairs.tif"
    profile, mosaic = mosaic_of(ROOT / "examples/data/olinda_l7_cd/val/images", pair)
    assert mosaic.shape == (12, 96, 349)
    out = tmp_path / "maps"
    run_cli(
        "predict", "-c", "configs/specmae_cd.yaml", "-c", "configs/predict_scene_cd.yaml",
        f"--ckpt_path={only(fit.rglob('last.ckpt'))}", f"--data.init_args.scene={pair}",
        f"--predict_output_dir={out}", f"--trainer.default_root_dir={tmp_path / 'predict'}",
    )
    with rasterio.open(out / "olinda_val_pairs_pred.tif") as pred:
        assert pred.shape == (96, 349) and pred.crs == profile["crs"] and pred.transform == profile["transform"]
        assert set(np.unique(pred.read(1))) <= {0, 1}
    assert (out / "olinda_val_pairs_pred.png").stat().st_size > 1000


def test_gallery_script_collects_the_task_pictures(tmp_path, monkeypatch):
    """examples/gallery.py (quick mode): a fit picture, and a scene map from tiled prediction. The
    script's own code runs here; its ``terratorch`` commands run in this process too (run_cli, as
    the other CLI tests), not as the three fresh processes the script starts for a user."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gallery", ROOT / "examples/gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    commands = []
    monkeypatch.setattr(gallery, "terratorch", lambda *args: commands.append(args[0]) or run_cli(*args))
    written = gallery.main(["--quick", "--only", "objext", "scene", "--out", str(tmp_path)])
    assert commands == ["fit", "fit", "predict"]  # objext; scene: fit the segmentation model, then predict the scene
    assert written == [tmp_path / "objext.png", tmp_path / "scene.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objext.png", "scene.png"]
    import matplotlib.image

    for picture in tmp_path.iterdir():  # a real picture: readable, not tiny, more than a blank and a legend
        pixels = matplotlib.image.imread(picture)
        assert min(pixels.shape[:2]) > 100, (picture.name, pixels.shape)
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 4, picture.name


def test_progressive_pretraining_stage2_continues_from_stage1(pretrained, tmp_path):
    """configs/specmae_pretrain_s2mae_stage2.yaml: Landsat 7 64 px → Sentinel-2 48 px, encoder and decoder."""
    from terratorch_specmae.tasks import SpectralMAETask

    config = yaml.safe_load((ROOT / "configs/specmae_pretrain_s2mae_stage2.yaml").read_text())
    model_args = {**config["model"]["init_args"]["model_args"], "ckpt_path": str(pretrained)}
    stage2 = SpectralMAETask(model_args=model_args).model
    stage1 = torch.load(pretrained, map_location="cpu", weights_only=True)["state_dict"]
    assert stage2.encoder.bands == ("B02", "B03", "B04", "B08") and stage2.encoder.img_size == (48, 48)
    for key, value in stage2.state_dict().items():
        if "pos_embed" not in key and key != "encoder.band_order":  # blocks, norms, kernels, decoder: stage 1's
            assert torch.equal(value, stage1[f"model.{key}"]), key
    assert stage2.encoder.band_order.tolist() == [0, 1, 2, 3]  # another band set, not a reordering
    # groups (BLUE GREEN RED) (NIR_BROAD SWIR_1 SWIR_2) → (B02 B03 B04) (B08): the same rows
    assert torch.equal(stage2.encoder.pos_embed.spectral, stage1["model.encoder.pos_embed.spectral"])
    assert stage2.encoder.pos_embed.spatial.shape == (1, 36, 192)  # 8×8 → 6×6
    run_cli(
        "fit", "-c", "configs/specmae_pretrain_s2mae_stage2.yaml", *QUICK, f"--trainer.default_root_dir={tmp_path}",
        f"--model.init_args.model_args.ckpt_path={pretrained}",
    )  # fmt: skip
    state = torch.load(only(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    assert state["model.encoder.pos_embed.spatial"].shape == (1, 36, 192)
    assert list(tmp_path.rglob("reconstructions/reconstruction_epoch000.png"))


def test_exported_folder_fine_tunes_locally_and_through_a_hub_endpoint(pretrained, tmp_path):
    """specmae-weights export → a folder; terratorch loads it as a path, then as hf://… from a Hub stand-in
    reached through HF_ENDPOINT, then from the cache alone with HF_HUB_OFFLINE=1."""
    from hub_server import LocalHub

    folder = tmp_path / "s2mae-tiny-olinda"
    # the installed specmae-weights command's function, run in this process
    (exporter,) = importlib.metadata.entry_points(group="console_scripts", name="specmae-weights")
    assert exporter.value == "terratorch_specmae.cli:main"
    exporter.load()(["export", str(pretrained), str(folder), "--encoder-only"])
    card = (folder / "README.md").read_text()
    assert "| SWIR_1 | 1610 | 91.2848 | 32.136 |" in card  # the run's normalisation, from its config.yaml
    assert "GenericMultiModalDataModule over examples/data/olinda_l7/train/images" in card
    source = torch.load(pretrained, map_location="cpu", weights_only=True)["state_dict"]

    def fine_tune(ckpt: str, out: Path, env: dict | None = None) -> None:
        args = ("fit", "-c", "configs/specmae_seg.yaml", *QUICK, f"--trainer.default_root_dir={out}",
                f"--model.init_args.model_args.backbone_ckpt_path={ckpt}",
                "--model.init_args.freeze_backbone=true")  # fmt: skip
        if env is None:
            run_cli(*args)
        else:  # huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE when imported: a fresh process
            terratorch_process(*args, env=env)
        tuned = torch.load(only(out.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
        for key in (k for k in source if k.startswith("model.encoder.")):
            assert torch.equal(tuned[key], source[key]), key

    fine_tune(str(folder), tmp_path / "local")
    cache = tmp_path / "hf_cache"
    with LocalHub() as hub:
        hub.publish("olinda/s2mae-tiny", folder)
        fine_tune("hf://olinda/s2mae-tiny", tmp_path / "hub", {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache)})
        assert len(hub.downloads()) == 2  # config.json and model.safetensors
    fine_tune("hf://olinda/s2mae-tiny", tmp_path / "offline", {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})


def _deterministic_cls_config(tmp_path: Path) -> Path:
    """configs/specmae_cls.yaml without the randomness a data-parallel run cannot share: no head
    dropout, no augmentation (the 80 training chips are then the same global batch in any order).
    The config's last.ckpt holds the last step's weights (see test_last_ckpt_is_the_last_epoch)."""
    config = yaml.safe_load((ROOT / "configs/specmae_cls.yaml").read_text())
    config["model"]["init_args"]["model_args"]["head_dropout"] = 0.0
    config["data"]["init_args"]["train_transform"] = [{"class_path": "albumentations.pytorch.transforms.ToTensorV2"}]
    path = tmp_path / "cls.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ddp_on_two_cpu_processes_matches_one_process_with_the_same_global_batch(tmp_path):
    """The same YAML; only trainer settings (and the per-process batch) change: 2 gloo processes × 40 chips
    vs 1 process × 80 chips, one step per epoch. The weights after 3 steps agree far closer than one
    step moves them."""
    config = _deterministic_cls_config(tmp_path)
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--data.init_args.batch_size=40"]
    runs = {
        "single": ["--trainer.max_epochs=3", "--data.init_args.batch_size=80"],
        "ddp": ["--trainer.max_epochs=3", *ddp],
        "one_step": ["--trainer.max_epochs=2", "--data.init_args.batch_size=80"],
    }
    weights = {}
    for name, args in runs.items():
        argv = ("fit", "-c", str(config), *args, "--trainer.limit_val_batches=1",
                f"--trainer.default_root_dir={tmp_path / name}")  # fmt: skip
        if name == "ddp":  # Lightning launches the other rank from the command line: a real process
            terratorch_process(*argv)
        else:
            run_cli(*argv)
        ckpt = torch.load(only((tmp_path / name).rglob("last.ckpt")), map_location="cpu", weights_only=True)
        weights[name] = torch.cat([v.float().flatten() for k, v in sorted(ckpt["state_dict"].items())])
    step = (weights["single"] - weights["one_step"]).norm()
    assert step > 0
    assert (weights["ddp"] - weights["single"]).norm() < 1e-3 * step


def _deterministic_corpus_pretraining(tmp_path: Path) -> Path:
    """configs/pretrain/s2mae_vit_base_ssl4eo.yaml on a fake SSL4EO-S12 (2 training locations × 4 seasons),
    with a tiny S2MAE and without the randomness a data-parallel run cannot share: SIGMAE's saliency
    masking at γ = 1 with top-k and no noise (the masked tokens follow from the image), no crops, no flips."""
    root = make_ssl4eo(tmp_path / "ssl4eo", locations=3, splits=("s2a",), size=32)
    config = yaml.safe_load((ROOT / "configs/pretrain/s2mae_vit_base_ssl4eo.yaml").read_text())
    config["trainer"].update(accelerator="cpu", devices=1, strategy="auto", precision=32, log_every_n_steps=1)
    data = config["data"]["init_args"]
    data.update(root=str(root), split="s2a", seasons="all", img_size=32, crop_scale=[1.0, 1.0], flips=False,
                val_samples=1, num_workers=0)  # fmt: skip
    config["trainer"]["callbacks"][0]["init_args"]["every_n_epochs"] = 1
    model_args = config["model"]["init_args"]["model_args"]
    model_args.update(model="s2mae_vit_tiny_mae", img_size=32, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2,
                      masking="saliency", masking_options={"indices": ["NDVI", "NDWI", "NDBI"], "scale": 1e-4,
                      "selection": "topk", "noise": 0.0, "schedule": "constant", "gamma_max": 1.0})  # fmt: skip
    config["model"]["init_args"]["warmup_epochs"] = 0
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_corpus_pretraining_under_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    """A paper-recipe YAML on the SSL4EO-S12 datamodule: 2 gloo processes × 4 images vs 1 process × 8
    images, one step per epoch. The weights after 3 steps agree far closer than one step moves them, the
    weights are finite, and rank 0 alone draws the reconstruction pictures (no hang)."""
    config = _deterministic_corpus_pretraining(tmp_path)
    runs = {
        "single": ["--trainer.max_epochs=3", "--data.init_args.batch_size=8"],
        "ddp": ["--trainer.max_epochs=3", "--trainer.strategy=ddp", "--trainer.devices=2", "--data.init_args.batch_size=4"],
        "one_step": ["--trainer.max_epochs=2", "--data.init_args.batch_size=8"],
    }
    weights = {}
    for name, args in runs.items():
        argv = ("fit", "-c", str(config), *args, f"--trainer.default_root_dir={tmp_path / name}")
        if name == "ddp":  # Lightning launches the other rank from the command line: a real process
            terratorch_process(*argv)
        else:
            run_cli(*argv)
        state = torch.load(only((tmp_path / name).rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values())
        weights[name] = torch.cat([v.float().flatten() for k, v in sorted(state.items())])
    step = (weights["single"] - weights["one_step"]).norm()
    assert step > 0
    assert (weights["ddp"] - weights["single"]).norm() < 1e-3 * step
    pictures = sorted(p.name for p in (tmp_path / "ddp").rglob("reconstructions/*.png"))
    assert pictures == [f"reconstruction_epoch00{e}.png" for e in range(3)]