"""No file a user opens runs code: a pickle payload on every route by which the package reads a file.

The payload's ``__reduce__`` calls ``exec``, which would write a marker file. Every route must refuse
the file (an error naming it) and leave no marker: checkpoints through the builders' ``ckpt_path``,
``specmae-weights export`` / ``convert-spectralgpt`` / ``export-onnx``, ``save_pretrained`` folders, the
Hub cache, the catalogue's Zenodo download, a ``.pt2`` export's metadata, corpus shards, HSI files,
and Lightning's resume (``fit --ckpt_path``).
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch
from cli_runner import run_cli
from hub_server import LocalHub
from huggingface_hub import constants
from tiny import TINY_ENCODER
from zenodo_server import LocalZenodo

from terratorch_specmae.backbones import build_backbone
from terratorch_specmae.cli import main as weights_cli
from terratorch_specmae.datamodules.hsi_files import open_scene
from terratorch_specmae.datamodules.streaming import check_index
from terratorch_specmae.deployment import read_metadata
from terratorch_specmae.weights.published import SPECTRALGPT_RECORD


class Payload:
    """Unpickling this runs ``exec(code)``."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('code ran')"

    def __reduce__(self):
        return builtins.exec, (self.code,)


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists(), "a pickle payload ran"


def torch_payload(path: Path, marker: Path, wrap: bool = True) -> Path:
    """A torch file whose pickle holds the payload (inside a checkpoint-like dict, or bare)."""
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hyper_parameters": Payload(marker)} if wrap else Payload(marker), path)
    return path


def plain_pickle_payload(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    return path


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth"])
@pytest.mark.parametrize("kind", ["torch-zip", "plain-pickle", "bare"])
def test_a_checkpoint_with_a_payload_is_refused_by_ckpt_path(tmp_path, marker, suffix, kind):
    path = tmp_path / f"payload{suffix}"
    if kind == "plain-pickle":
        plain_pickle_payload(path, marker)
    else:
        torch_payload(path, marker, wrap=kind == "torch-zip")
    with pytest.raises(ValueError, match=rf"Could not read checkpoint .*payload\{suffix}"):
        build_backbone("tiny", "s2mae", **TINY_ENCODER, ckpt_path=str(path))


def test_the_weights_commands_refuse_a_payload(tmp_path, marker, capsys):
    def refused(argv: list[str], message: str) -> None:  # a user error: exit status 2, the reason on stderr
        with pytest.raises(SystemExit) as exit_:
            weights_cli(argv)
        assert exit_.value.code == 2
        assert re.search(message, capsys.readouterr().err.splitlines()[-1])

    ckpt = torch_payload(tmp_path / "last.ckpt", marker)
    refused(["export", str(ckpt), str(tmp_path / "out")], "Could not read checkpoint")
    refused(["export-onnx", str(ckpt), str(tmp_path / "model.onnx")], "Could not read checkpoint")
    pth = plain_pickle_payload(tmp_path / "SpectralGPT+.pth", marker)
    refused(["convert-spectralgpt", str(pth), str(tmp_path / "converted")], r"as a SpectralGPT checkpoint \(weights_only=True\)")


def test_a_weights_folder_or_a_hub_file_with_a_payload_is_refused(tmp_path, marker, monkeypatch):
    folder = tmp_path / "folder"
    build_backbone("tiny", "s2mae", **TINY_ENCODER).save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(pickle.dumps(Payload(marker)))  # config.json is JSON: read as such
    with pytest.raises(ValueError, match="Could not read checkpoint .*model.safetensors"):
        build_backbone("tiny", "s2mae", **TINY_ENCODER, ckpt_path=str(folder))
    with LocalHub() as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        hub.publish("bad/weights", {"encoder.pt": torch_payload(tmp_path / "encoder.pt", marker).read_bytes()})
        with pytest.raises(ValueError, match="Could not read checkpoint .*encoder.pt"):
            build_backbone("tiny", "s2mae", **TINY_ENCODER, ckpt_path="hf://bad/weights/encoder.pt")


def test_a_catalogue_download_with_a_payload_is_refused_before_conversion(tmp_path, marker, monkeypatch):
    data = plain_pickle_payload(tmp_path / "SpectralGPT+.pth", marker).read_bytes()
    with LocalZenodo() as zenodo:
        zenodo.publish(SPECTRALGPT_RECORD, {"SpectralGPT+.pth": data})  # published with its own (right) MD5
        monkeypatch.setenv("SPECMAE_ZENODO_ENDPOINT", zenodo.url)
        monkeypatch.setenv("SPECMAE_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        with pytest.raises(ValueError, match=r"Could not read checkpoint .*SpectralGPT\+\.pth"):
            build_backbone("base", "s2mae", pretrained=True)
    assert hashlib.md5((tmp_path / "cache/zenodo" / SPECTRALGPT_RECORD / "SpectralGPT+.pth").read_bytes()).hexdigest()
    assert not list((tmp_path / "cache").rglob("*.safetensors"))  # nothing converted from it


def test_reading_a_pt2_exports_metadata_unpickles_nothing(tmp_path, marker):
    """torch.export.load would unpickle the archive's sample inputs; read_metadata reads its JSON only."""

    class Double(torch.nn.Module):
        def forward(self, x):
            return 2 * x

    buffer = io.BytesIO()
    torch.export.save(torch.export.export(Double(), (torch.randn(2),)), buffer,
                      extra_files={"metadata.json": json.dumps({"task": "segmentation"})})  # fmt: skip
    hostile = tmp_path / "model.pt2"
    payload = io.BytesIO()
    torch.save(Payload(marker), payload)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(hostile, "w") as out:
        for info in source.infolist():
            data = payload.getvalue() if info.filename.endswith("sample_inputs/model.pt") else source.read(info)
            out.writestr(info, data)
    assert read_metadata(hostile) == {"task": "segmentation"}
    (tmp_path / "broken.pt2").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match=r"Could not read the metadata of .*broken.pt2.*zip archive"):
        read_metadata(tmp_path / "broken.pt2")


def test_shards_that_declare_a_pickle_format_are_refused_before_any_item_is_read(tmp_path, marker):
    from terratorch_specmae.datamodules.streaming import METADATA_KEY, SHARD_FORMAT, StreamingCorpusDataModule

    split = tmp_path / "shards" / "train"
    split.mkdir(parents=True)
    item = pickle.dumps({"image": Payload(marker)})
    (split / "chunk-0-0.bin").write_bytes(item)
    index = {
        "chunks": [{"chunk_bytes": len(item), "chunk_size": 1, "filename": "chunk-0-0.bin", "dim": None}],
        "config": {"chunk_bytes": 64_000_000, "chunk_size": None, "compression": None, "data_format": ["pickle"],
                   "data_spec": "[1, {\"type\": null, \"context\": null, \"children_spec\": []}]", "encryption": None,
                   "item_loader": "PyTreeLoader"},
        "updated_at": "0",
        METADATA_KEY: {"format": SHARD_FORMAT, "bands": ["B02"], "means": [0.0], "stds": [1.0], "corpus": "x",
                       "samples": {"train": 1, "val": 0}},
    }  # fmt: skip
    (split / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"declares item formats \['pickle'\]; refused before reading any item"):
        StreamingCorpusDataModule(str(tmp_path / "shards"), batch_size=1)
    for key, value in (("compression", "lz4"), ("encryption", "fernet"), ("item_loader", "TokensLoader")):
        config = {**index["config"], "data_format": ["numpy"], key: value}
        with pytest.raises(ValueError, match=rf"declares {key} '{value}'"):
            check_index({"config": config}, "somewhere")
    check_index({"config": {**index["config"], "data_format": ["numpy"]}}, "fine")  # what specmae-shards writes


def test_an_hsi_file_holding_a_pickle_is_refused(tmp_path, marker):
    for name in ("scene.mat", "scene.hdr"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(Payload(marker)))
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            open_scene(path)


@pytest.mark.slow
def test_resuming_from_a_checkpoint_with_a_payload_is_refused(tmp_path, marker):
    """Lightning reads ``fit --ckpt_path`` with torch's default weights_only=True (torch >= 2.6)."""
    ckpt = torch_payload(tmp_path / "last.ckpt", marker)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        run_cli("fit", "-c", "configs/specmae_seg.yaml", f"--ckpt_path={ckpt}", "--trainer.max_epochs=1",
                f"--trainer.default_root_dir={tmp_path}")  # fmt: skip
