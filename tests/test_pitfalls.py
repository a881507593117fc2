"""The TerraTorch pitfalls of the docs (``docs/pitfalls.md``), on the snippets in ``docs/snippets/``.

Each snippet is layered over a shipped config as the page says (``-c config -c snippet``) and built
in this process (model and datamodule constructed, a batch through the model); its wrong form is made
from the snippet and must still go wrong as the snippet's header says. A failure of a "wrong" test
means TerraTorch changed: update the snippet's header and the pitfalls page. The builds
are marked slow (about 1 s each, some 30 s in all); the fast test checks that every snippet parses,
names a config that exists and is linked from the pitfalls page.
"""

from __future__ import annotations

import copy
import re
import shutil

import pytest
import torch
import yaml
from cli_runner import ROOT, run_cli

SNIPPETS = ROOT / "docs" / "snippets"
SEG, CLS = "configs/specmae_seg.yaml", "configs/specmae_cls.yaml"
MODEL_ARGS = "--model.init_args.model_args"
TINY_24 = (f"{MODEL_ARGS}.backbone_embed_dim=32", f"{MODEL_ARGS}.backbone_num_heads=2")  # 24 narrow blocks


def _snippet(name: str) -> dict:
    return yaml.safe_load((SNIPPETS / name).read_text())


def _write(tmp_path, config: dict, name: str = "wrong.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _build(*args: str):
    return run_cli(*args, run=False)


def _batch(size: int = 64) -> torch.Tensor:
    return torch.randn(2, 6, size, size)


def _necks_with(snippet: dict, indices) -> dict:
    wrong = copy.deepcopy(snippet)
    wrong["model"]["init_args"]["model_args"]["necks"][0]["indices"] = indices
    return wrong


def test_every_snippet_parses_layers_on_a_shipped_config_and_is_linked_from_the_docs():
    snippets = sorted(SNIPPETS.glob("*.yaml"))
    page = (ROOT / "docs" / "pitfalls.md").read_text()
    assert len(snippets) == 5
    for path in snippets:
        text = path.read_text()
        assert isinstance(yaml.safe_load(text), dict), path.name
        command = re.search(r"terratorch (?:fit|predict) -c (\S+) -c docs/snippets/(\S+)", text)
        assert command and (ROOT / command[1]).is_file() and command[2] == path.name, path.name
        assert f"](snippets/{path.name})" in page, path.name


# ---- SelectIndices


@pytest.mark.slow
def test_select_indices_for_12_blocks_feed_blocks_3_6_9_12_to_the_decoder():
    model = _build("-c", SEG, "-c", str(SNIPPETS / "select_indices_12_blocks.yaml")).model.model.eval()
    x = _batch()
    with torch.no_grad():
        features = model.encoder(x)
        selected = model.neck[0](features)
        assert model.neck[0].indices == [2, 5, 8, 11] and len(features) == 12
        assert all(s is features[i] for s, i in zip(selected, (2, 5, 8, 11), strict=True))
        assert model(x).output.shape == (2, 3, 64, 64)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("indices", "extra", "message"),
    [
        ([3, 6, 9, 12], (), r"Index 12 is out of range for this 12-block encoder.*valid indices .* 0–11"),  # 1-based
        ([5, 11, 17, 23], (), r"Index 17 is out of range for this 12-block encoder.*\[2, 5, 8, 11\]"),  # 24 blocks
        (
            [2, 5, 8, 11],
            (f"{MODEL_ARGS}.backbone_out_indices=[2, 5, 8, 11]",),
            r"Index 5 is out of range .* 4 outputs, blocks \[2, 5, 8, 11\] of its 12 .* 0–3",
        ),
        ([3, 7, 11], (), "exactly 4 input embeddings"),
    ],
    ids=["one-based", "24-block-list", "with-out_indices", "three-levels"],
)
def test_wrong_select_indices_for_12_blocks_fail_at_construction(tmp_path, indices, extra, message):
    wrong = _write(tmp_path, _necks_with(_snippet("select_indices_12_blocks.yaml"), indices))
    with pytest.raises(Exception, match=message):
        _build("-c", SEG, "-c", wrong, *extra)


@pytest.mark.slow
def test_select_indices_for_24_blocks_reach_the_final_block():
    model = _build("-c", SEG, "-c", str(SNIPPETS / "select_indices_24_blocks.yaml"), *TINY_24).model.model.eval()
    x = _batch()
    with torch.no_grad():
        features = model.encoder(x)
        assert len(features) == 24 and model.neck[0].indices == [5, 11, 17, 23]
        assert model.neck[0](features)[-1] is features[23]
        assert model(x).output.shape == (2, 3, 64, 64)


@pytest.mark.slow
def test_12_block_indices_on_a_24_block_encoder_silently_skip_its_second_half(tmp_path):
    wrong = _write(tmp_path, _necks_with(_snippet("select_indices_24_blocks.yaml"), [2, 5, 8, 11]))
    model = _build("-c", SEG, "-c", wrong, *TINY_24).model.model.eval()
    x = _batch()
    with torch.no_grad():
        features = model.encoder(x)
        assert model(x).output.shape == (2, 3, 64, 64)  # builds and runs: nothing says anything is wrong
        selected = model.neck[0](features)
    assert selected[-1] is features[11]
    assert not any(s is features[i] for s in selected for i in range(12, 24))


@pytest.mark.slow
def test_a_second_config_file_replaces_model_args_whole(tmp_path):
    """Why the SelectIndices snippets repeat all of model_args: a fragment with only ``necks`` drops the rest."""
    necks = _snippet("select_indices_12_blocks.yaml")["model"]["init_args"]["model_args"]["necks"]
    fragment = {"model": {"init_args": {"model_args": {"necks": necks}}}}
    with pytest.raises(Exception, match="missing 1 required positional argument: 'backbone'"):
        _build("-c", SEG, "-c", _write(tmp_path, fragment))


# ---- aux_heads


def _flattened_aux_heads(snippet: dict) -> dict:
    wrong = copy.deepcopy(snippet)
    init = wrong["model"]["init_args"]
    init["aux_heads"] = [head["init_args"] for head in init["aux_heads"]]  # name / decoder / decoder_args only
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "size", "shape"), [(SEG, 64, (2, 3, 64, 64)), (CLS, 32, (2, 3))], ids=["seg", "cls"]
)
def test_aux_heads_as_class_paths_build_an_auxiliary_head(config, size, shape):
    task = _build("-c", config, "-c", str(SNIPPETS / "aux_heads.yaml")).model
    assert task.aux_loss == {"aux_head": 0.4}
    with torch.no_grad():
        out = task.model.eval()(_batch(size))
    assert set(out.auxiliary_heads) == {"aux_head"} and out.auxiliary_heads["aux_head"].shape == shape


@pytest.mark.slow
def test_aux_heads_without_class_path_fail_in_the_segmentation_task(tmp_path):
    wrong = _write(tmp_path, _flattened_aux_heads(_snippet("aux_heads.yaml")))
    with pytest.raises(Exception, match="'dict' object has no attribute 'decoder_args'"):
        _build("-c", SEG, "-c", wrong)


@pytest.mark.slow
def test_aux_heads_without_class_path_are_accepted_by_the_classification_task(tmp_path):
    wrong = _write(tmp_path, _flattened_aux_heads(_snippet("aux_heads.yaml")))
    with torch.no_grad():
        out = _build("-c", CLS, "-c", wrong).model.model.eval()(_batch(32))
    assert out.auxiliary_heads["aux_head"].shape == (2, 3)


# ---- ToTensorV2


def _transforms(snippet: dict, class_paths) -> dict:
    wrong = copy.deepcopy(snippet)
    wrong["data"]["init_args"]["train_transform"] = [{"class_path": c} for c in class_paths]
    return wrong


def _first_training_sample(cli, monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs' data folders are relative to the repository root
    cli.datamodule.setup("fit")
    return cli.datamodule.train_dataset[0]


@pytest.mark.slow
@pytest.mark.parametrize(("config", "size"), [(SEG, 64), (CLS, 32)], ids=["seg", "cls"])
@pytest.mark.parametrize("to_tensor", ["snippet", "albumentations.pytorch.ToTensorV2"])
def test_full_to_tensor_path_gives_channels_first_tensors(tmp_path, monkeypatch, config, size, to_tensor):
    snippet = str(SNIPPETS / "to_tensor.yaml")
    if to_tensor != "snippet":
        snippet = _write(tmp_path, _transforms(_snippet("to_tensor.yaml"), ["albumentations.D4", to_tensor]))
    cli = _build("-c", config, "-c", snippet)
    image = _first_training_sample(cli, monkeypatch)["image"]
    assert isinstance(image, torch.Tensor) and image.shape == (6, size, size)


@pytest.mark.slow
def test_bare_to_tensor_name_fails_in_the_classification_datamodule(tmp_path):
    wrong = _write(tmp_path, _transforms(_snippet("to_tensor.yaml"), ["albumentations.D4", "ToTensorV2"]))
    with pytest.raises(Exception, match="'dict' object has no attribute 'available_keys'"):
        _build("-c", CLS, "-c", wrong)


@pytest.mark.slow
def test_bare_to_tensor_name_is_resolved_by_the_segmentation_datamodule(tmp_path, monkeypatch):
    wrong = _write(tmp_path, _transforms(_snippet("to_tensor.yaml"), ["albumentations.D4", "ToTensorV2"]))
    image = _first_training_sample(_build("-c", SEG, "-c", wrong), monkeypatch)["image"]
    assert isinstance(image, torch.Tensor) and image.shape == (6, 64, 64)


@pytest.mark.slow
def test_without_to_tensor_segmentation_fails_at_the_first_sample(tmp_path, monkeypatch):
    wrong = _write(tmp_path, _transforms(_snippet("to_tensor.yaml"), ["albumentations.D4"]))
    cli = _build("-c", SEG, "-c", wrong)
    with pytest.raises(AttributeError, match="'numpy.ndarray' object has no attribute 'long'"):
        _first_training_sample(cli, monkeypatch)


@pytest.mark.slow
def test_without_to_tensor_classification_batches_are_channels_last_and_our_encoder_refuses_them(tmp_path, monkeypatch):
    wrong = _write(tmp_path, _transforms(_snippet("to_tensor.yaml"), ["albumentations.D4"]))
    cli = _build("-c", CLS, "-c", wrong)
    image = _first_training_sample(cli, monkeypatch)["image"]
    assert not isinstance(image, torch.Tensor) and image.shape == (32, 32, 6)
    batch = torch.as_tensor(image)[None].expand(2, -1, -1, -1)
    with pytest.raises(ValueError, match="Expected 6 bands"):
        cli.model.model(batch)


# ---- predict_output_dir for EmbeddingGenerationTask


@pytest.mark.slow
def test_embeddings_output_dir_snippet_sets_all_three_folders():
    folder = _snippet("embeddings_output_dir.yaml")["predict_output_dir"]
    created = [p for p in (ROOT / "outputs", ROOT / folder) if not p.exists()]  # the task makes output_dir at once
    try:
        cli = _build("-c", "configs/specmae_embeddings.yaml", "-c", str(SNIPPETS / "embeddings_output_dir.yaml"))
        assert cli.trainer.predict_output_dir == folder
        assert str(cli.model.output_path) == folder
        assert cli.trainer.default_root_dir == folder
    finally:
        for path in reversed(created):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()


@pytest.mark.slow
def test_embeddings_without_predict_output_dir_fail_after_the_first_batch(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "specmae_embeddings.yaml").read_text())
    del config["predict_output_dir"]
    chips, out = tmp_path / "chips", tmp_path / "embeddings"
    chips.mkdir()
    chip = sorted((ROOT / "examples" / "data" / "olinda_l7" / "val" / "images").glob("*.tif"))[0]
    shutil.copy(chip, chips / chip.name)
    with pytest.raises(TypeError, match="not NoneType"):
        run_cli(
            "predict", "-c", _write(tmp_path, config, "no_predict_output_dir.yaml"),
            f"--data.init_args.predict_data_root={chips}", f"--model.init_args.output_dir={out}",
            f"--trainer.default_root_dir={out}",
        )  # fmt: skip
    assert (out / "layer_00" / f"{chip.stem}_embedding.tif").is_file()  # the task wrote; the writer then failed


@pytest.mark.parametrize(("value", "meant"), [("64", "int 64")])
def test_decoder_options_given_as_text_on_the_command_line_name_the_argument(value, meant):
    """--model.init_args.model_args.decoder_channels=64 reaches TerraTorch as the string '64' (model_args is an
    untyped dict); UperNet failed with "not all arguments converted during string formatting"."""
    with pytest.raises(ValueError, match=rf"model_args\.decoder_channels is the string '{re.escape(value)}', "
                                         rf"expected {meant}: a command-line override of a model_args entry"):
        _build("-c", "configs/specmae_seg.yaml", f"--model.init_args.model_args.decoder_channels={value}")
    with pytest.raises(ValueError, match=r"model_args\.num_classes is the string '3', expected int 3"):
        _build("-c", "configs/specmae_seg.yaml", "--model.init_args.model_args.num_classes=3")
