"""Corpus shards (LitData) on local disk: write_corpus_shards / specmae-shards from a corpus datamodule over fake
files in the real layout, then StreamingCorpusDataModule reading them: every image once per epoch at its stored
values, bands by name, the published statistics carried in the shards, crops, a new shuffle each epoch, and
clear errors. The object-storage path is the same reader with a URL (LitData's downloaders), not run here."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from data.fmow_sentinel.data import make_fmow_sentinel
from data.sentinel2 import band_from_value
from data.ssl4eo.data import SSL4EO_SEASONS, make_ssl4eo

from terratorch_specmae.cli_shards import main as shards_main
from terratorch_specmae.datamodules import (
    FMoWSentinelPretrainDataModule,
    SSL4EOS12PretrainDataModule,
    StreamingCorpusDataModule,
)
from terratorch_specmae.datamodules.pretraining_corpora import CORPUS_STATISTICS
from terratorch_specmae.datamodules.streaming import METADATA_KEY, ShardSample, write_corpus_shards

pytest.importorskip("litdata")

BANDS = ["B8A", "B02", "B12", "B04", "B11"]
SIZE = 264  # SSL4EO-S12 images are 264 × 264 px (TorchGeo reads every band at that size)


@pytest.fixture(scope="module")
def ssl4eo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ssl4eo")
    make_ssl4eo(root, locations=3, splits=("s2a",))
    return root


@pytest.fixture(scope="module")
def shards(ssl4eo, tmp_path_factory) -> tuple[Path, SSL4EOS12PretrainDataModule]:
    source = SSL4EOS12PretrainDataModule(root=str(ssl4eo), split="s2a", bands=BANDS, val_samples=1, batch_size=2)
    out = tmp_path_factory.mktemp("shards") / "ssl4eo_shards"
    start = multiprocessing.get_start_method(allow_none=True)
    tmp = Path(tempfile.gettempdir())
    before = {
        name: sorted(p.name for p in (tmp / name).iterdir()) for name in ("chunks", "data") if (tmp / name).is_dir()
    }
    assert write_corpus_shards(source, out, num_workers=2) == out
    assert multiprocessing.get_start_method(allow_none=True) == start  # LitData's optimize changes it; restored
    # LitData empties <tmp>/chunks and <tmp>/data when it starts: ours were elsewhere, theirs untouched
    after = {
        name: sorted(p.name for p in (tmp / name).iterdir()) for name in ("chunks", "data") if (tmp / name).is_dir()
    }
    assert after == before and not any(
        k in os.environ for k in ("DATA_OPTIMIZER_CACHE_FOLDER", "DATA_OPTIMIZER_DATA_CACHE_FOLDER")
    )
    return out, source


def images(loader) -> list[torch.Tensor]:
    return [image for batch in loader for image in batch["image"]]


def signature(image: torch.Tensor) -> tuple:
    return tuple(round(float(v), 2) for v in image.double().sum(dim=(1, 2)))


def test_shards_hold_every_training_and_validation_image_at_its_values_with_bands_and_statistics(shards):
    out, source = shards
    meta = {split: json.loads((out / split / "index.json").read_text())[METADATA_KEY] for split in ("train", "val")}
    assert meta["train"]["samples"] == {
        "train": 2 * len(SSL4EO_SEASONS),
        "val": len(SSL4EO_SEASONS),
    }  # 1 location held out
    assert meta["train"]["bands"] == BANDS and meta["train"]["dtype"] == "uint16"
    published = CORPUS_STATISTICS["ssl4eo_s12_s2a"]
    assert meta["train"]["means"] == [published[b][0] for b in BANDS]  # the published numbers, exactly
    assert meta["val"]["stds"] == pytest.approx([published[b][1] for b in BANDS])
    assert sorted(p.name for p in out.parent.iterdir()) == ["ssl4eo_shards"]  # no temporary folder left beside it
    # read back uncropped (img_size = the files' size, crop_scale [1, 1]): each image exactly once, values unchanged
    dm = StreamingCorpusDataModule(str(out), img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=3)
    dm.setup("fit")
    train, val = source.build("fit", crop=False)
    streamed = images(dm.train_dataloader()) + images(dm.val_dataloader())
    originals = [train[i]["image"] for i in range(len(train))] + [val[i]["image"] for i in range(len(val))]
    assert (
        len(streamed) == len(images(dm.val_dataloader())) + 6
    )  # 8 training images in batches of 3: the last 2 dropped
    assert {signature(x) for x in streamed} <= {signature(x) for x in originals}
    everything = StreamingCorpusDataModule(str(out), img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=1)
    everything.setup("fit")
    assert sorted(
        map(signature, images(everything.train_dataloader()) + images(everything.val_dataloader()))
    ) == sorted(map(signature, originals))
    assert all(x.shape == (len(BANDS), SIZE, SIZE) for x in originals)


def test_zstd_compressed_shards_read_back_the_same_images(shards, tmp_path):
    out, source = shards
    packed = write_corpus_shards(source, tmp_path / "zstd", compression="zstd")
    assert json.loads((packed / "train" / "index.json").read_text())["config"]["compression"] == "zstd"

    def every_image(folder: Path) -> list[tuple]:
        dm = StreamingCorpusDataModule(str(folder), img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=1)
        dm.setup("fit")
        return sorted(map(signature, images(dm.train_dataloader()) + images(dm.val_dataloader())))

    assert every_image(packed) == every_image(out)
    with pytest.raises(ValueError, match="compression must be one of \\[None, 'zstd'\\], got 'gzip'"):
        write_corpus_shards(source, tmp_path / "gzip", compression="gzip")


def test_streaming_datamodule_selects_bands_by_name_crops_and_standardises_with_the_shards_statistics(shards):
    out, _ = shards
    bands = ["B04", "B8A", "B02"]
    dm = StreamingCorpusDataModule(str(out), bands=bands, img_size=24, batch_size=4, num_workers=2)
    assert dm.available_bands == tuple(BANDS) and dm.band_names == bands
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    assert set(raw) == {"image"} and raw["image"].shape == (4, 3, 24, 24) and raw["image"].dtype == torch.float32
    assert [band_from_value(float(raw["image"][:, c].mean())) for c in range(3)] == bands
    published = CORPUS_STATISTICS["ssl4eo_s12_s2a"]
    mean, std = torch.tensor([published[b][0] for b in bands]), torch.tensor([published[b][1] for b in bands])
    assert dm.means == pytest.approx(mean.tolist()) and dm.stds == pytest.approx(std.tolist())
    dm.trainer = SimpleNamespace(
        training=False, validating=True, sanity_checking=False, testing=False, predicting=False
    )
    val = next(iter(dm.val_dataloader()))
    out_batch = dm.on_after_batch_transfer({"image": val["image"].clone()}, 0)
    torch.testing.assert_close(out_batch["image"], (val["image"] - mean[:, None, None]) / std[:, None, None])


def test_each_epoch_draws_a_new_order_from_the_seed(shards):
    out, _ = shards

    def orders(seed: int) -> list[list[tuple]]:
        dm = StreamingCorpusDataModule(str(out), img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=1, seed=seed)
        dm.setup("fit")
        loader = dm.train_dataloader()
        return [[signature(x) for x in images(loader)] for _ in range(2)]

    first, second = orders(0)
    assert sorted(first) == sorted(second) and len(first) == 8
    assert first != second  # epoch 2 is another permutation of the same images
    assert orders(0) == [first, second]  # the same seed, the same orders (every rank agrees)


def test_specmae_shards_writes_a_corpus_from_a_pretraining_config(tmp_path, capsys):
    fmow = make_fmow_sentinel(tmp_path / "fmow")
    config = tmp_path / "pretrain.yaml"
    config.write_text(
        "data:\n  class_path: terratorch_specmae.datamodules.FMoWSentinelPretrainDataModule\n"
        "  init_args: {root: nowhere, bands: [B02, B03, B04], val_samples: 2, batch_size: 2}\n"
    )
    shards_main([str(config), str(tmp_path / "shards"), "--root", str(fmow)])
    printed = capsys.readouterr().out
    shards_config = tmp_path / "shards.yaml"
    shards_config.write_text(
        "data:\n  class_path: terratorch_specmae.datamodules.StreamingCorpusDataModule\n  init_args: {input_dir: x}\n"
    )
    with pytest.raises(SystemExit) as exit_:  # a user error: exit status 2 and one line naming the config's data
        shards_main([str(shards_config), str(tmp_path / "again")])
    assert exit_.value.code == 2
    assert "data is terratorch_specmae.datamodules.StreamingCorpusDataModule; expected a corpus" in capsys.readouterr().err
    dm = StreamingCorpusDataModule(str(tmp_path / "shards"), img_size=16, batch_size=2)
    assert dm.metadata["corpus"] == "fMoW-Sentinel" and dm.band_names == ["B02", "B03", "B04"]
    source = FMoWSentinelPretrainDataModule(root=str(fmow), bands=["B02", "B03", "B04"], val_samples=2)
    train, _ = source.build("fit", crop=False)
    assert dm.metadata["samples"] == {"train": len(train), "val": 2}
    assert f"{len(train)} training and 2 validation samples" in printed
    dm.setup("fit")
    sizes = {tuple(x.shape) for x in images(dm.train_dataloader())}
    assert sizes == {(3, 16, 16)}  # images of different sizes, each cropped to img_size


def test_shard_writing_refuses_to_overwrite_or_to_change_values(shards, ssl4eo, tmp_path):
    out, source = shards
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(FileExistsError, match="ssl4eo_shards exists"):
        write_corpus_shards(source, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    random = SSL4EOS12PretrainDataModule(root=str(ssl4eo), split="s2a", seasons="random", val_samples=1)
    with pytest.raises(ValueError, match="seasons 'all'.*got 'random'"):
        write_corpus_shards(random, tmp_path / "x")
    with pytest.raises(ValueError, match="dtype must be one of \\['uint16', 'float32'\\], got 'int8'"):
        write_corpus_shards(source, tmp_path / "x", dtype="int8")
    fractional = [{"image": torch.full((2, 3, 3), 0.5)}]
    with pytest.raises(ValueError, match="sample 0 has values in \\[0.5, 0.5\\].*dtype='float32'"):
        ShardSample(fractional, "uint16", "fake")(0)
    assert ShardSample(fractional, "float32", "fake")(0)["image"].dtype == np.float32
    with pytest.raises(ValueError, match="NaN or inf"):
        ShardSample([{"image": torch.tensor([[[float("nan")]]])}], "float32", "fake")(0)
    assert not (tmp_path / "x").exists()


def test_streaming_datamodule_errors_name_what_was_expected(shards, tmp_path):
    out, _ = shards
    with pytest.raises(FileNotFoundError, match="train/index.json is missing; expected corpus shards"):
        StreamingCorpusDataModule(str(tmp_path / "nothing"))
    with pytest.raises(
        FileNotFoundError, match="is one split's folder; input_dir is the folder holding train/ and val/"
    ):
        StreamingCorpusDataModule(str(out / "train"))
    with pytest.raises(ValueError, match="has bands .*'B8A'.*unknown: \\['B10'\\]"):
        StreamingCorpusDataModule(str(out), bands=["B02", "B10"])
    foreign = tmp_path / "foreign" / "train"
    foreign.mkdir(parents=True)
    index = json.loads((out / "train" / "index.json").read_text())
    del index[METADATA_KEY]
    (foreign / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="no 'terratorch_specmae' entry of format 1"):
        StreamingCorpusDataModule(str(foreign.parent))
    dm = StreamingCorpusDataModule(str(out), batch_size=5)
    dm.trainer = SimpleNamespace(world_size=2)
    with pytest.raises(ValueError, match="hold 8 samples, 4 per process over 2, fewer than batch_size 5"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="no 'test' stage"):
        dm.setup("test")


def test_a_resumed_loader_continues_the_epoch_where_its_state_was_saved(shards):
    """What Lightning's checkpoints keep of a StreamingDataLoader (its state_dict): a new loader given it
    yields the rest of the epoch, no image twice and none lost."""
    out, _ = shards

    def loader():
        dm = StreamingCorpusDataModule(str(out), img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=2, seed=3)
        dm.setup("fit")
        return dm.train_dataloader()

    whole = [signature(x) for x in images(loader())]
    first = loader()
    seen = []
    for step, batch in enumerate(first):
        seen += [signature(x) for x in batch["image"]]
        if step == 1:
            state = first.state_dict()
            break
    resumed = loader()
    resumed.load_state_dict(state)
    rest = [signature(x) for x in images(resumed)]
    assert len(seen) == 4 and len(rest) == 4 and seen + rest == whole


@pytest.mark.parametrize("seed", [0, 7])
def test_ranks_read_disjoint_equal_shares_of_one_shuffled_order(shards, monkeypatch, seed):
    """What DDP needs of the streamed corpus: with the same seed on 2 ranks, each reads half of the training
    images, none twice and none on both (LitData's distributed split; the rank is what it detects)."""
    from litdata.utilities.env import _DistributedEnv

    out, _ = shards
    shares = []
    for rank in range(2):
        monkeypatch.setattr(_DistributedEnv, "detect", classmethod(lambda cls, r=rank: cls(2, r, 1)))
        dm = StreamingCorpusDataModule(str(out), img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=2, seed=seed)
        dm.setup("fit")
        shares.append([signature(x) for x in images(dm.train_dataloader())])
    assert len(shares[0]) == len(shares[1]) == 4  # 8 training images over 2 ranks
    assert not set(shares[0]) & set(shares[1]) and len(set(shares[0] + shares[1])) == 8


def test_shards_stream_from_an_s3_compatible_store(shards, tmp_path, monkeypatch):
    """The object-storage path: the shards uploaded to an S3 endpoint (moto's server, in this process), read
    through s3:// with the metadata taken from the index LitData downloads, chunks cached in cache_dir, and
    every image as read from the local folder."""
    pytest.importorskip("moto.server")
    import boto3
    import litdata.streaming.downloader
    from moto.server import ThreadedMotoServer

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # LitData fetches chunks with obstore where it can; obstore refuses plain-HTTP endpoints such as this
    # test server's (real S3 is HTTPS), so chunks go through boto3, LitData's other S3 client
    monkeypatch.setattr(litdata.streaming.downloader, "_OBSTORE_AVAILABLE", False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="corpus")
        out, _ = shards
        for path in out.rglob("*"):
            if path.is_file():
                s3.upload_file(str(path), "corpus", f"ssl4eo/{path.relative_to(out).as_posix()}")

        def every_image(input_dir: str, **options) -> list[tuple]:
            dm = StreamingCorpusDataModule(
                input_dir, img_size=SIZE, crop_scale=[1, 1], flips=False, batch_size=1, **options
            )
            assert dm.band_names == BANDS and dm.metadata["samples"] == {"train": 8, "val": 4}
            dm.setup("fit")
            return sorted(map(signature, images(dm.train_dataloader()) + images(dm.val_dataloader())))

        cache = tmp_path / "cache"
        remote = every_image("s3://corpus/ssl4eo", cache_dir=str(cache), storage_options={"endpoint_url": endpoint})
        assert remote == every_image(str(out))
        assert len(remote) == 12 and any(p.suffix == ".bin" for p in cache.rglob("*"))  # chunks came through the cache
    finally:
        server.stop()


def test_shards_missing_samples_are_an_error_and_leave_no_folder(shards, tmp_path, monkeypatch):
    """LitData's optimize returns normally when its worker processes die at start-up (a `python -` session
    cannot be re-imported by spawned workers), leaving an index of no chunks: that is an error, not shards."""
    import litdata

    _, source = shards

    def workers_died(fn, inputs, output_dir, **kwargs):
        Path(output_dir).mkdir(parents=True)
        Path(output_dir, "index.json").write_text(json.dumps({"chunks": [], "config": {}}))

    monkeypatch.setattr(litdata, "optimize", workers_died)
    with pytest.raises(
        RuntimeError, match="the train shards hold 0 samples; expected 8. LitData's worker processes failed"
    ):
        write_corpus_shards(source, tmp_path / "broken")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the half-written folder is gone


def test_a_validation_split_written_with_other_bands_is_refused_not_read_under_the_training_names(shards, tmp_path):
    out, _ = shards
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    index_path = copy / "val" / "index.json"
    index = json.loads(index_path.read_text())
    index[METADATA_KEY]["bands"] = list(reversed(index[METADATA_KEY]["bands"]))
    index_path.write_text(json.dumps(index))
    datamodule = StreamingCorpusDataModule(str(copy), batch_size=1)
    with pytest.raises(ValueError, match=r"copy/val: its index.json names bands \[.*\], the training split's \[.*\]"):
        datamodule.setup("fit")


def damage(chunk: Path, how: str) -> None:
    """Delete ``chunk`` or cut it to half its bytes (an interrupted copy)."""
    if how == "missing":
        chunk.unlink()
    else:
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])


def damage_message(chunk: Path, how: str, expected: int) -> str:
    start = rf"Shard chunk {re.escape(str(chunk))} is {how}: .*train/index.json lists"
    if how == "missing":
        return rf"{start} it with {expected} bytes \(chunk_bytes\), found no file"
    return rf"{start} {expected} bytes \(chunk_bytes\), the file holds {expected // 2}\."


@pytest.mark.parametrize("how", ["missing", "truncated"])
def test_a_missing_or_truncated_chunk_is_named_when_the_shards_are_opened_and_when_it_is_read(shards, tmp_path, how):
    """A chunk file the index lists that is not there at its listed size (chunk_bytes): named with both sizes when
    the local split is opened, and when it is read after going missing (not LitData's wait timeout)."""
    out, _ = shards
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    listed = json.loads((copy / "train" / "index.json").read_text())["chunks"][-1]
    chunk, expected = copy / "train" / listed["filename"], listed["chunk_bytes"]
    error = FileNotFoundError if how == "missing" else ValueError
    saved = chunk.read_bytes()
    damage(chunk, how)
    with pytest.raises(error, match=damage_message(chunk, how, expected)):
        StreamingCorpusDataModule(str(copy), batch_size=1)
    chunk.write_bytes(saved)
    dm = StreamingCorpusDataModule(str(copy), img_size=16, batch_size=1)
    dm.setup("fit")
    damage(chunk, how)  # after the check: the read names it
    with pytest.raises(error, match=damage_message(chunk, how, expected)):
        images(dm.train_dataloader())


@pytest.mark.parametrize("where", ["storage_options", "AWS_ENDPOINT_URL"])
def test_an_unreachable_s3_endpoint_is_named_within_the_connect_timeout_not_retried_for_ever(
    tmp_path, monkeypatch, where
):
    """LitData's S3 client retries ~1,000 times: an endpoint that does not answer (a closed local port) is given up
    on after connect_timeout_s, with an error naming it and the URL."""
    pytest.importorskip("boto3")
    from terratorch_specmae.datamodules.streaming import CONNECT_TIMEOUT_S

    assert inspect.signature(StreamingCorpusDataModule).parameters["connect_timeout_s"].default == CONNECT_TIMEOUT_S
    assert f"{CONNECT_TIMEOUT_S:g} s" in StreamingCorpusDataModule.__doc__
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"storage_options": {"endpoint_url": endpoint}} if where == "storage_options" else {}
    if where == "AWS_ENDPOINT_URL":
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    limit = 2.0
    start = time.monotonic()
    with pytest.raises(
        ConnectionError,
        match=rf"Could not reach the S3 endpoint {re.escape(endpoint)} for s3://corpus/ssl4eo/train/index.json: "
        rf"\d+ attempt\(s\) in .* s \(connect_timeout_s=2\) got no answer",
    ):
        StreamingCorpusDataModule(
            "s3://corpus/ssl4eo", cache_dir=str(tmp_path / "cache"), connect_timeout_s=limit, **options
        )
    assert time.monotonic() - start < limit + 15  # bounded (LitData alone retries for minutes), generous for a busy CPU
    with pytest.raises(ValueError, match="connect_timeout_s must be > 0 seconds \\(or None: no check\\), got 0"):
        StreamingCorpusDataModule("s3://corpus/ssl4eo", connect_timeout_s=0)
