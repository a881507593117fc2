"""The ``specmae`` command-line tool: its subcommands' help, user errors (exit status 2, one line on
standard error, no traceback), internal errors (a traceback), the catalogue and download commands,
and the deprecated ``specmae-weights`` / ``specmae-shards`` names."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import constants
from test_export import MAE_ARGS
from test_export import write_run as write_pretraining_run
from test_onnx_export import write_run as write_finetuning_run
from zenodo_server import LocalZenodo

from terratorch_specmae import cli as weights_cli_module
from terratorch_specmae import cli_shards
from terratorch_specmae.cli import specmae
from terratorch_specmae.cli.examples import MAIN_CONFIG, SHIPPED
from terratorch_specmae.cli.specmae import COMMANDS, build_parser, main
from terratorch_specmae.weights import PRETRAINED_CFGS, PretrainedCfg, register_pretrained_cfg

NAMES = ["examples", "export", "convert-spectralgpt", "export-onnx", "shards", "synthetic-hsi", "catalogue", "download"]
SPECMAE = shutil.which("specmae", path=str(Path(sys.executable).parent))
ROOT = Path(__file__).resolve().parents[1]


def exit_of(capsys, argv, entry=main):
    """(exit status, stdout, stderr) of ``entry(argv)`` in this process."""
    try:
        entry(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_tool_lists_its_subcommands_in_this_order():
    assert [c.name for c in COMMANDS] == NAMES
    parser, _ = build_parser()
    text = parser.format_help()
    for name in NAMES:
        assert f"    {name}" in text, name


@pytest.mark.parametrize("name", ["", *NAMES])
def test_help_exits_0_and_names_every_argument(name, capsys):
    code, out, err = exit_of(capsys, [name, "--help"] if name else ["--help"])
    assert code == 0 and err == ""
    _, parsers = build_parser()
    if not name:
        assert out.startswith("usage: specmae ") and all(n in out for n in NAMES)
        return
    assert out.startswith(f"usage: specmae {name} ")
    for action in parsers[name][1]._actions:
        shown = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
        assert shown in out, (name, shown)
        if action.dest != "help":
            assert action.help, (name, action.dest)  # every argument says what it is


def test_synthetic_hsi_writes_a_scene(tmp_path, capsys):
    code, out, err = exit_of(capsys, ["synthetic-hsi", str(tmp_path / "scene"), "--size", "16", "--bands", "4"])
    assert code == 0 and err == "" and out.startswith("wrote ")
    assert sorted(p.name for p in (tmp_path / "scene").iterdir()) == [
        "aux.tif", "hsi.tif", "labels.tif", "scene.json", "split.tif"
    ]


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "empty folder"])
def test_examples_copies_every_config_and_the_data_the_main_config_reads(tmp_path, capsys, existing):
    folder = tmp_path / "my-specmae"
    if existing:
        folder.mkdir()
    code, out, err = exit_of(capsys, ["examples", str(folder)])
    assert code == 0 and err == "" and out.startswith(f"wrote {folder}: ")
    assert f"cd {folder} && terratorch fit -c {MAIN_CONFIG}" in out
    assert sorted(p.name for p in folder.iterdir()) == ["configs", "examples"]
    for part in SHIPPED:  # every config (the benchmark plugin module too) and every data file, byte for byte
        shipped = files_under(ROOT / part)
        assert files_under(folder / part) == shipped and shipped, part
        for name in shipped:
            assert (folder / part / name).read_bytes() == (ROOT / part / name).read_bytes(), name
    # the main config's data paths resolve from the copy, to the same files as in the repository
    init_args = yaml.safe_load((folder / MAIN_CONFIG).read_text())["data"]["init_args"]
    roots = {key: value for key, value in init_args.items() if key.endswith("_data_root")}
    assert len(roots) == 6
    for key, value in roots.items():
        assert files_under(folder / value) == files_under(ROOT / value) != set(), key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left beside it


def test_examples_refuses_a_folder_with_anything_in_it(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("mine")
    code, _, err = exit_of(capsys, ["examples", str(tmp_path)])
    check_one_line(code, err, "specmae examples", f"The folder {str(tmp_path)!r} is not empty")
    assert files_under(tmp_path) == {"mine.txt"} and (tmp_path / "mine.txt").read_text() == "mine"


# ---- user errors: exit status 2, one line, no traceback


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "full").mkdir()
    (root / "full" / "notes.txt").write_text("mine")
    (root / "a_file").write_text("x")
    (root / "exists.onnx").write_bytes(b"an earlier export")
    torch.save({"a": torch.zeros(1)}, root / "bare.ckpt")
    torch.save({"state_dict": {}, "hyper_parameters": {"model_factory": "FullModelFactory",
                "model_args": {"model": "s2mae_vit_tiny_mae"}}}, root / "pretrain.ckpt")  # fmt: skip
    (root / "no_data.yaml").write_text("trainer: {}\n")
    (root / "streaming.yaml").write_text(yaml.safe_dump({"data": {
        "class_path": "terratorch_specmae.datamodules.StreamingCorpusDataModule", "init_args": {"input_dir": "x"}}}))
    finetuned, _ = write_finetuning_run(root / "seg")
    return root, finetuned


def _cases(root: Path, finetuned: Path) -> list[tuple[list[str], str]]:
    """(argv, what the one line says) for each user error."""
    r = str(root)
    return [
        (["examples", f"{r}/full"], "is not empty; expected a new or empty folder"),
        (["examples", f"{r}/a_file"], "is a file; expected a folder"),
        (["export", f"{r}/missing.ckpt", f"{r}/out"], "Checkpoint file not found: expected a file at"),
        (["export", f"{r}/pretrain.ckpt", f"{r}/full"], "is not empty: it holds notes.txt"),
        (["export", f"{r}/pretrain.ckpt", f"{r}/a_file"], "is a file; expected a folder"),
        (["export", f"{r}/bare.ckpt", f"{r}/out"], "is not a pretraining checkpoint of ours"),
        (["convert-spectralgpt", f"{r}/missing.pth", f"{r}/out"], "SpectralGPT checkpoint not found"),
        (["convert-spectralgpt", f"{r}/bare.ckpt", f"{r}/out"], "is not a SpectralGPT pretraining checkpoint"),
        (["export-onnx", str(finetuned), f"{r}/exists.onnx"], "exists; pass --overwrite"),
        (["export-onnx", str(finetuned), f"{r}/model.txt"], "Cannot tell the export format"),
        (["export-onnx", str(finetuned), f"{r}/m.onnx", "--image-size", "1", "2", "3"], "--image-size takes H or H W"),
        (["export-onnx", f"{r}/missing.ckpt", f"{r}/m.onnx"], "Checkpoint file not found"),
        (["export-onnx", f"{r}/pretrain.ckpt", f"{r}/m.onnx"],
         ("is a pretraining checkpoint (model_args.model = 's2mae_vit_tiny_mae'); a deployment export takes a fine-tuning "
          "run (EncoderDecoderFactory around an s2mae_/sigmae_ backbone). Export pretrained weights with `specmae export`.")),
        (["export-onnx", str(finetuned), f"{r}/m.pt2", "--image-size", "4"], "is smaller than one 8×8 patch"),
        (["export-onnx", str(finetuned), f"{r}/m.pt2", "--image-size", "48", "40"], "pads 48×40 images to 48×48"),
        (["export-onnx", str(finetuned), f"{r}/m.pt2", "--config", f"{r}/nowhere.yaml"], "does not exist"),
        (["shards", f"{r}/missing.yaml", f"{r}/shards"], "does not exist"),
        (["shards", f"{r}/no_data.yaml", f"{r}/shards"], "expected a 'data' section with a class_path"),
        (["shards", f"{r}/streaming.yaml", f"{r}/shards"], "expected a corpus datamodule"),
        (["shards", f"{r}/no_data.yaml", f"{r}/full"], "exists; corpus shards are written to a new folder"),
        (["synthetic-hsi", f"{r}/a_file"], "is a file; expected a folder for the scene"),
        (["synthetic-hsi", f"{r}/scene", "--size", "4"], "Expected size >= 16"),
        (["download", "nope"], "No catalogue weights are named 'nope'; `specmae catalogue` lists the names."),
        (["download", "s2mae_vit_base.nope"], "Unknown weights s2mae_vit_base.nope"),
    ]


def check_one_line(code: int, err: str, prog: str, expected: str) -> None:
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    assert expected in lines[0] and "Traceback" not in err, err


def test_each_user_error_exits_2_with_one_line_and_no_traceback(files, capsys):
    root, finetuned = files
    for argv, expected in _cases(root, finetuned):
        code, _, err = exit_of(capsys, argv)
        check_one_line(code, err, f"specmae {argv[0]}", expected)
    assert not (root / "out").exists() and not (root / "shards").exists() and not list(root.glob("m.*"))
    assert (root / "exists.onnx").read_bytes() == b"an earlier export" and (root / "full" / "notes.txt").exists()


def test_offline_with_nothing_cached_exits_2_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECMAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    code, _, err = exit_of(capsys, ["download", "s2mae_vit_base"])  # a Zenodo entry
    check_one_line(code, err, "specmae download", "SpectralGPT+.pth (Zenodo record 8412455) is not in the cache")
    code, _, err = exit_of(capsys, ["download", "sigmae_vit_small.ssl4eo_s12_mae"])  # a Hub entry
    check_one_line(code, err, "specmae download", "not in the local cache")
    assert "Offline mode is on" in err


def test_usage_errors_of_the_parser_exit_2_without_a_traceback(capsys):
    for argv in ([], ["no-such-command"], ["export"], ["export-onnx", "a.ckpt", "b.onnx", "--format", "tflite"]):
        code, _, err = exit_of(capsys, argv)
        assert code == 2 and "error: " in err.splitlines()[-1] and "Traceback" not in err, (argv, err)


def test_internal_errors_keep_their_traceback(files, monkeypatch, capsys):
    """Only the errors the package reports about the input are user errors: the same exception types raised
    elsewhere (a bug, a library) propagate with their traceback."""
    root, _ = files

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr("terratorch_specmae.cli.weights.export_checkpoint", broken)
    with pytest.raises(ValueError, match="an internal inconsistency"):
        main(["export", str(root / "pretrain.ckpt"), str(root / "out")])

    def crashes(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr("terratorch_specmae.cli.weights.export_for_deployment", crashes)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        main(["export-onnx", str(root / "pretrain.ckpt"), str(root / "m.onnx")])
    assert capsys.readouterr().err == ""


def test_a_user_error_shows_its_traceback_when_asked(files, monkeypatch):
    root, _ = files
    monkeypatch.setenv("SPECMAE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="is not a pretraining checkpoint of ours"):
        main(["export", str(root / "bare.ckpt"), str(root / "out")])


def test_the_installed_console_script_runs_and_reports_a_user_error_in_one_line(tmp_path):
    assert SPECMAE, "the specmae console script is not installed (pip install -e .)"
    done = subprocess.run(
        [SPECMAE, "export-onnx", str(tmp_path / "run.ckpt"), str(tmp_path / "model.tflite")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.splitlines() == [
        (f"specmae export-onnx: error: Cannot tell the export format from '{tmp_path / 'model.tflite'}': expected a "
         "file name ending in .onnx or .pt2, or a format among onnx, torch-export.")
    ]


# ---- the catalogue


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch, catalogue_restored):
    """A catalogue entry ``s2mae_vit_tiny.demo`` on a Zenodo stand-in; our cache and the Hub's in tmp_path."""
    monkeypatch.setenv("SPECMAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    buffer = io.BytesIO()
    torch.save({"tokenizer.proj.weight": torch.ones(4, 1, 3, 8, 8)}, buffer)
    with LocalZenodo() as zenodo:
        zenodo.publish("4242", {"demo.pth": buffer.getvalue()})
        monkeypatch.setenv("SPECMAE_ZENODO_ENDPOINT", zenodo.url)
        register_pretrained_cfg("s2mae_vit_tiny", PretrainedCfg(
            zenodo_record="4242", filename="demo.pth", bands=["B02", "B03", "B04", "B08"], img_size=[16, 16],
            license="cc-by-4.0", source="a test"), tag="demo")  # fmt: skip
        yield tmp_path / "cache" / "zenodo" / "4242" / "demo.pth"


def test_catalogue_lists_every_entry_and_download_caches_one(tiny_entry, capsys):
    code, out, _ = exit_of(capsys, ["catalogue"])
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["name", "bands", "image", "size", "licence", "cached", "source"]
    names = {line.split()[0] for line in rows if line and not line.startswith("*")}
    assert names == {f"{v}.{t}" for v, tags in PRETRAINED_CFGS.items() for t in tags}
    demo = next(line for line in rows if line.startswith("s2mae_vit_tiny.demo"))
    assert demo.split() == ["s2mae_vit_tiny.demo", "*", "4", "(B02…B08)", "16×16", "cc-by-4.0", "no",
                            "Zenodo", "record", "4242,", "file", "demo.pth"]  # fmt: skip
    assert "s2mae_vit_base.spectralgpt_plus *" in out  # the default tag is marked

    code, out, err = exit_of(capsys, ["download", "s2mae_vit_tiny.demo"])
    assert code == 0 and err == "" and tiny_entry.is_file()
    assert out == f"s2mae_vit_tiny.demo (Zenodo record 4242, file demo.pth) is in the cache: {tiny_entry}\n"

    code, out, _ = exit_of(capsys, ["catalogue", "--json"])
    entries = {entry["name"]: entry for entry in yaml.safe_load(out)}
    assert entries["s2mae_vit_tiny.demo"]["cached"] == str(tiny_entry)
    assert entries["s2mae_vit_tiny.demo"]["bands"] == ["B02", "B03", "B04", "B08"]
    assert entries["s2mae_vit_base.spectralgpt"]["cached"] is None  # nothing fetched by listing


# ---- the deprecated names


def test_specmae_weights_still_works_after_a_deprecation_line(tmp_path, capsys):
    ckpt, _ = write_pretraining_run(tmp_path / "run", MAE_ARGS)
    code, out, err = exit_of(capsys, ["export", str(ckpt), str(tmp_path / "out")], weights_cli_module.main)
    assert code == 0 and "SpectralMAE (6 bands) written to" in out
    assert err.splitlines() == [
        "specmae-weights is deprecated and will be removed in the next release; use `specmae export` instead."
    ]
    code, _, err = exit_of(capsys, ["export", str(ckpt), str(tmp_path / "out")], weights_cli_module.main)
    deprecation, error = err.splitlines()
    assert code == 2 and "use `specmae export` instead" in deprecation
    assert error.startswith("specmae-weights export: error: The output folder") and "Traceback" not in err
    code, out, err = exit_of(capsys, ["export-onnx", "--help"], weights_cli_module.main)
    assert code == 0 and out.startswith("usage: specmae-weights export-onnx ") and "`specmae export-onnx`" in err
    code, _, err = exit_of(capsys, ["shards", "x", "y"], weights_cli_module.main)  # only its own three commands
    assert code == 2 and "invalid choice: 'shards'" in err


def test_specmae_shards_still_works_after_a_deprecation_line(files, capsys):
    root, _ = files
    code, out, err = exit_of(capsys, ["--help"], cli_shards.main)
    assert code == 0 and out.startswith("usage: specmae-shards ") and "--num-workers" in out
    assert err == "specmae-shards is deprecated and will be removed in the next release; use `specmae shards` instead.\n"
    code, _, err = exit_of(capsys, [str(root / "streaming.yaml"), str(root / "shards")], cli_shards.main)
    deprecation, error = err.splitlines()
    assert code == 2 and "use `specmae shards` instead" in deprecation
    assert error.startswith("specmae-shards: error: ") and "expected a corpus datamodule" in error
    assert cli_shards.corpus_from_config is specmae.shards.corpus_from_config  # the same code under both names
