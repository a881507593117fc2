"""The catalogue of public weights, end to end on files laid out exactly as the published ones.

The real files cannot be downloaded here, so each is rebuilt with its published key names, shapes
and pickle layout (``published_files.py``) and served as the publisher serves it: SpectralGPT(+)
from a Zenodo stand-in (record metadata with MD5, range requests), the SSL4EO-S12 encoders from a
Hub stand-in at the revision TorchGeo pins. Models are built through TerraTorch's registries, so
the code path is the one a real download takes: download → checksum → convert → strict load.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from hub_server import LocalHub
from huggingface_hub import constants
from published_files import spectralgpt_bytes, ssl4eo_bytes, ssl4eo_state, timm_reference
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY
from zenodo_server import LocalZenodo

from terratorch_specmae.weights import PRETRAINED_CFGS, DownloadError, cache_dir
from terratorch_specmae.weights import downloads as downloads_module
from terratorch_specmae.weights import files as files_module
from terratorch_specmae.weights.converters import convert_spectralgpt, timm_vit_state_to_ours
from terratorch_specmae.weights.published import SPECTRALGPT_RECORD, hub_location

ENTRIES = sorted((variant, tag) for variant, tags in PRETRAINED_CFGS.items() for tag in tags)

SIZES = {"spectralgpt": 96, "spectralgpt_plus": 128}


def _size(variant: str) -> str:
    return variant.split("_")[2]


@pytest.fixture
def published(tmp_path, monkeypatch):
    """Hub and Zenodo stand-ins holding every catalogue file, huggingface_hub and our cache pointed at tmp_path."""
    with LocalHub() as hub, LocalZenodo() as zenodo:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("SPECMAE_CACHE", raising=False)
        monkeypatch.setenv("SPECMAE_ZENODO_ENDPOINT", zenodo.url)
        zenodo.publish(SPECTRALGPT_RECORD, {"SpectralGPT.pth": spectralgpt_bytes(96, seed=1),
                                            "SpectralGPT+.pth": spectralgpt_bytes(128, seed=2)})  # fmt: skip
        repos: dict[tuple[str, str], dict[str, bytes]] = {}
        for (variant, tag) in ENTRIES:
            cfg = PRETRAINED_CFGS[variant][tag]
            if cfg.hf_hub_id:
                files = repos.setdefault((cfg.hf_hub_id, cfg.revision), {})
                if cfg.filename not in files:
                    files[cfg.filename] = ssl4eo_bytes(_size(variant), seed=len(files) + 3)
        for (repo, revision), files in repos.items():
            hub.publish(repo, files, revision="main", commit=revision)
        yield hub, zenodo
    shutil.rmtree(tmp_path / "hf", ignore_errors=True)  # converted ViT-B files are ~0.5 GB each: not kept on disk


def _state_of(hub: LocalHub, cfg) -> dict[str, torch.Tensor]:
    """The tensors the Hub stand-in serves for ``cfg`` (read back from its bytes)."""
    import io

    return torch.load(io.BytesIO(hub.repos[cfg.hf_hub_id][cfg.revision][cfg.filename]), weights_only=True)


def _image(bands: int, size: int) -> torch.Tensor:
    return torch.rand(2, bands, size, size, generator=torch.Generator().manual_seed(0))


def test_the_catalogue_lists_spectralgpt_and_the_ssl4eo_s12_vits_from_torchgeo():
    from torchgeo.models import ViTBase16_Weights

    assert ("s2mae_vit_base", "spectralgpt_plus") in ENTRIES and ("s2mae_vit_base_mae", "spectralgpt") in ENTRIES
    for size in ("small", "base", "large"):
        for tag in ("ssl4eo_s12_mae", "ssl4eo_s12_fgmae"):
            assert (f"sigmae_vit_{size}", tag) in ENTRIES and (f"sigmae_vit_{size}_mae", tag) in ENTRIES
    cfg = PRETRAINED_CFGS["sigmae_vit_base"]["ssl4eo_s12_mae"]
    weights = ViTBase16_Weights.SENTINEL2_ALL_MAE  # read from TorchGeo, not copied: the same URL and revision
    assert (cfg.hf_hub_id, cfg.revision, cfg.filename) == hub_location(weights.url)
    assert len(cfg.revision) == 40 and cfg.bands[:2] == ["B01", "B02"] and cfg.bands[8] == "B8A" and len(cfg.bands) == 13
    assert cfg.mean == [0.0] * 13 and cfg.std == [10000.0] * 13 and cfg.img_size == [224, 224]
    assert cfg.license == "cc-by-4.0" and "SSL4EO-S12" in cfg.citation and cfg.wavelengths_nm[3] == pytest.approx(664.6)
    plus = PRETRAINED_CFGS["s2mae_vit_base"]["spectralgpt_plus"]
    assert plus.scaling == "minmax_per_image" and plus.img_size == [128, 128] and plus.zenodo_record == "8412455"
    assert plus.license == "other" and "Zenodo record 8412455" in plus.terms and "GPL-3.0" in plus.terms
    assert "Pattern Analysis and Machine Intelligence" in plus.citation


@pytest.mark.parametrize(
    ("variant", "tag"),
    [pytest.param(v, t, marks=pytest.mark.slow) if "large" in v else (v, t) for v, t in ENTRIES],
    ids=[f"{v}.{t}" for v, t in ENTRIES],
)
def test_every_catalogue_entry_loads_strictly_from_a_layout_exact_file(published, variant, tag, request):
    hub, zenodo = published
    if "large" in variant:  # a ViT-L and timm's reference beside it: a few GB
        request.getfixturevalue("memory_heavy")
    cfg = PRETRAINED_CFGS[variant][tag]
    mae = variant.endswith("_mae")
    model = (FULL_MODEL_REGISTRY if mae else BACKBONE_REGISTRY).build(f"{variant}.{tag}", pretrained=True).eval()
    report = model.load_report
    encoder = model.encoder if mae else model
    assert report.unexpected == [] and report.new_bands == [] and report.adapted == []
    assert list(encoder.bands) == cfg.bands and list(encoder.img_size) == cfg.img_size
    assert model.pretrained_cfg.tag == f"{variant}.{tag}" and model.pretrained_cfg.citation == cfg.citation
    if cfg.zenodo_record:  # SpectralGPT: downloaded, checked, converted once to safetensors, then loaded
        original = cache_dir() / "zenodo" / cfg.zenodo_record / cfg.filename
        assert original.read_bytes() == zenodo.records[cfg.zenodo_record][cfg.filename]
        assert report.layout == "mae-state" and report.fresh == []  # the converted file holds encoder and decoder
        assert (report.ignored == 0) if mae else (report.ignored > 0)  # an encoder leaves the decoder's tensors
        assert report.container == "safetensors" and report.source.endswith(".safetensors")
        direct = convert_spectralgpt(original, mae=mae).eval()  # the converter, checked against SpectralGPT's forward
        expected = direct.state_dict()
        x = _image(12, 32)  # 4 × 4 cells of 4 groups (the tables resampled alike in both models)
        with torch.no_grad():
            if mae:
                g = torch.Generator().manual_seed(3)
                ours, theirs = model(x, generator=g).pred, direct(x, generator=torch.Generator().manual_seed(3)).pred
            else:
                ours, theirs = model(x)[-1], direct(x)[-1]
        assert torch.equal(ours, theirs)
    else:  # SSL4EO-S12: the Hub file at the pinned revision, a timm ViT, converted on load
        assert report.layout == "timm-vit" and report.container == "torch state dict"
        assert report.fresh == (["decoder"] if mae else [])  # the files hold encoders only
        assert any(d.startswith("cls_token") for d in report.dropped) and any("row 0" in d for d in report.dropped)
        state = _state_of(hub, cfg)
        expected = {("encoder." if mae else "") + k: v for k, v in timm_vit_state_to_ours(state).items()}
        reference = timm_reference(state, _size(variant))
        x = _image(13, 224)
        with torch.no_grad():
            ours = encoder(x)[-1]
            theirs = reference.forward_features(x)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    loaded = model.state_dict()
    for key, value in expected.items():  # strict: every tensor of the file is in the model, unchanged
        assert torch.equal(loaded[key], value), key
    assert {k for k in loaded if k.startswith("encoder.") or not mae} - set(expected) <= {
        ("encoder." if mae else "") + "band_order"
    }


def test_a_zenodo_download_cut_midway_resumes_where_it_stopped(published):
    _, zenodo = published
    data = zenodo.records[SPECTRALGPT_RECORD]["SpectralGPT.pth"]
    zenodo.cut_after["SpectralGPT.pth"] = len(data) // 3
    with pytest.raises(DownloadError, match=r"SpectralGPT.pth .*stopped after .* of .* bytes.*kept at .*\.part; run again to resume"):
        downloads_module.zenodo_file(SPECTRALGPT_RECORD, "SpectralGPT.pth")
    part = cache_dir() / "zenodo" / SPECTRALGPT_RECORD / "SpectralGPT.pth.part"
    assert 0 < part.stat().st_size < len(data)
    have = part.stat().st_size
    path = downloads_module.zenodo_file(SPECTRALGPT_RECORD, "SpectralGPT.pth")
    assert path.read_bytes() == data and not part.exists()
    assert zenodo.file_requests()[-1][1] == f"bytes={have}-"  # the second request asked only for the rest


@pytest.mark.parametrize("fault", ["ignore_range", "wrong_offset"])
def test_a_resumed_download_trusts_only_a_range_answer_that_starts_where_the_part_ends(published, fault):
    _, zenodo = published
    data = zenodo.records[SPECTRALGPT_RECORD]["SpectralGPT.pth"]
    zenodo.cut_after["SpectralGPT.pth"] = len(data) // 2
    with pytest.raises(DownloadError, match="stopped after"):
        downloads_module.zenodo_file(SPECTRALGPT_RECORD, "SpectralGPT.pth")
    getattr(zenodo, fault).add("SpectralGPT.pth")
    if fault == "wrong_offset":  # bytes from elsewhere are not appended: an error, the part kept as it was
        part = cache_dir() / "zenodo" / SPECTRALGPT_RECORD / "SpectralGPT.pth.part"
        kept = part.read_bytes()
        with pytest.raises(DownloadError, match=r"answered a request for bytes \d+- with 'bytes \d+-.*The part is kept"):
            downloads_module.zenodo_file(SPECTRALGPT_RECORD, "SpectralGPT.pth")
        assert part.read_bytes() == kept
        getattr(zenodo, fault).clear()
    # a server that ignores the range sends the whole file again: written from the start, not appended
    assert downloads_module.zenodo_file(SPECTRALGPT_RECORD, "SpectralGPT.pth").read_bytes() == data


def test_a_checksum_mismatch_is_an_error_naming_the_file_and_nothing_corrupt_is_kept(published):
    _, zenodo = published
    zenodo.wrong_md5.add("SpectralGPT+.pth")
    with pytest.raises(DownloadError, match=r"SpectralGPT\+.pth \(Zenodo record 8412455\) is corrupt: expected .* MD5 0{32} "
                       r"\(published by Zenodo\), got .* MD5 [0-9a-f]{32}.*removed; run again"):  # fmt: skip
        BACKBONE_REGISTRY.build("s2mae_vit_base", pretrained=True)
    folder = cache_dir() / "zenodo" / SPECTRALGPT_RECORD
    assert not (folder / "SpectralGPT+.pth").exists() and not (folder / "SpectralGPT+.pth.part").exists()
    zenodo.wrong_md5.clear()  # the publisher's checksum is right again: the next run downloads afresh and loads
    assert BACKBONE_REGISTRY.build("s2mae_vit_base", pretrained=True).load_report is not None


def test_a_pinned_md5_that_the_record_no_longer_publishes_downloads_nothing(published):
    _, zenodo = published
    with pytest.raises(DownloadError, match=r"now publishes MD5 [0-9a-f]{32} for SpectralGPT.pth, but the catalogue pins 1{32}"):
        downloads_module.zenodo_file(SPECTRALGPT_RECORD, "SpectralGPT.pth", md5="1" * 32)
    assert zenodo.file_requests() == []


def test_a_hub_file_altered_in_transit_is_refused_and_left_in_the_cache(published):
    hub, _ = published
    cfg = PRETRAINED_CFGS["sigmae_vit_small"]["ssl4eo_s12_mae"]
    hub.corrupt.add(f"{cfg.hf_hub_id}/{cfg.filename}")
    with pytest.raises(DownloadError, match=rf"{cfg.filename} of Hub repo {cfg.hf_hub_id} .* is corrupt: the Hub published SHA-256"):
        BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True)
    blobs = list((Path(constants.HF_HUB_CACHE)).rglob("blobs/*"))
    assert blobs  # not deleted: it is in the user's Hub cache, and the message says where it is
    hub.corrupt.clear()
    with pytest.raises(DownloadError, match="is corrupt"):  # still refused: a cached file is checked until it passes
        BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True)
    for blob in blobs:  # the user deletes it, as the message says: downloaded again, checked, used
        blob.unlink()
    assert BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True).load_report.layout == "timm-vit"
    assert len(list((cache_dir() / "verified").iterdir())) == 1


def test_offline_mode_uses_the_cache_and_names_what_is_missing(published, monkeypatch):
    hub, zenodo = published
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match=r"SpectralGPT\+.pth \(Zenodo record 8412455\) is not in the cache \(.*\) and offline "
                       r"mode is on \(HF_HUB_OFFLINE\)\. Run once with the network"):  # fmt: skip
        BACKBONE_REGISTRY.build("s2mae_vit_base", pretrained=True)
    with pytest.raises(ValueError, match=r"B13_vits16_mae_ep99_enc.pth of Hub repo 'wangyi111/SSL4EO-S12' .* not in the local cache .*Offline mode is on"):
        BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True)
    assert zenodo.requests == [] and hub.downloads() == []

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    online = {name: BACKBONE_REGISTRY.build(name, pretrained=True) for name in ("s2mae_vit_base", "sigmae_vit_small")}
    requests_before = (len(zenodo.requests), len(hub.requests))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, model in online.items():
        cached = BACKBONE_REGISTRY.build(name, pretrained=True)
        for key, value in model.state_dict().items():
            assert torch.equal(cached.state_dict()[key], value), (name, key)
    assert (len(zenodo.requests), len(hub.requests)) == requests_before  # nothing went to the network


def test_a_zenodo_file_is_converted_once_and_the_pickle_is_not_read_again(published, monkeypatch):
    first = BACKBONE_REGISTRY.build("s2mae_vit_base.spectralgpt", pretrained=True)
    converted = cache_dir() / "converted" / f"zenodo-{SPECTRALGPT_RECORD}" / "SpectralGPT.safetensors"
    assert converted.is_file() and first.load_report.source == str(converted)

    def no_pickle(path):
        raise AssertionError(f"a pickle was read again: {path}")

    readers = (downloads_module.load_torch_file, files_module.load_torch_file)
    monkeypatch.setattr(downloads_module, "load_torch_file", no_pickle)
    monkeypatch.setattr(files_module, "load_torch_file", no_pickle)
    again = BACKBONE_REGISTRY.build("s2mae_vit_base.spectralgpt", pretrained=True)
    assert torch.equal(again.tokenizer.proj.weight, first.tokenizer.proj.weight)
    monkeypatch.setattr(downloads_module, "load_torch_file", readers[0])
    monkeypatch.setattr(files_module, "load_torch_file", readers[1])
    stamp = converted.stat().st_mtime_ns
    original = cache_dir() / "zenodo" / SPECTRALGPT_RECORD / "SpectralGPT.pth"
    os.utime(original, ns=(original.stat().st_atime_ns, original.stat().st_mtime_ns + 10**9))  # the original changed
    BACKBONE_REGISTRY.build("s2mae_vit_base.spectralgpt", pretrained=True)
    assert converted.stat().st_mtime_ns != stamp  # converted again, from the file now there


def test_nothing_already_in_the_users_caches_is_deleted(published):
    _, zenodo = published
    mine = [Path(constants.HF_HUB_CACHE) / "models--me--mine" / "notes.txt", cache_dir() / "zenodo" / "1" / "keep.bin",
            cache_dir() / "converted" / "mine.safetensors"]  # fmt: skip
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    zenodo.wrong_md5.add("SpectralGPT+.pth")
    with pytest.raises(DownloadError):
        BACKBONE_REGISTRY.build("s2mae_vit_base", pretrained=True)
    zenodo.wrong_md5.clear()
    BACKBONE_REGISTRY.build("s2mae_vit_base", pretrained=True)
    BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True)
    assert all(path.read_text() == "mine" for path in mine)


def test_a_file_that_records_other_bands_than_its_catalogue_entry_is_an_error(published, tmp_path, catalogue_restored):
    from terratorch_specmae.weights import PretrainedCfg, register_pretrained_cfg

    hub, _ = published
    BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands="landsat7", img_size=32).save_pretrained(tmp_path / "folder")
    hub.publish("me/tiny", tmp_path / "folder")
    register_pretrained_cfg("s2mae_vit_tiny", PretrainedCfg(hf_hub_id="me/tiny", bands="sentinel2_l2a"), tag="mine")
    with pytest.raises(DownloadError, match=r"records bands \['BLUE', .*'SWIR_2'\], but the catalogue entry "
                       r"s2mae_vit_tiny.mine says \['B01', .*\]: fix the entry"):  # fmt: skip
        BACKBONE_REGISTRY.build("s2mae_vit_tiny.mine", pretrained=True)


def test_cache_dir_follows_hf_home_or_specmae_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("SPECMAE_CACHE", raising=False)
    assert cache_dir() == tmp_path / "hf" / "specmae"
    monkeypatch.setenv("SPECMAE_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"


def test_tags_and_missing_weights_are_named_errors():
    with pytest.raises(ValueError, match=r"Unknown weights s2mae_vit_base.ssl4eo_s12_mae: 's2mae_vit_base' has these registered: "
                       r"s2mae_vit_base.spectralgpt_plus, s2mae_vit_base.spectralgpt"):  # fmt: skip
        BACKBONE_REGISTRY.build("s2mae_vit_base.ssl4eo_s12_mae")
    with pytest.raises(ValueError, match=r"No pretrained weights are registered for 's2mae_vit_tiny'\. Weights there are: .*"
                       r"sigmae_vit_large.ssl4eo_s12_mae"):  # fmt: skip
        BACKBONE_REGISTRY.build("s2mae_vit_tiny", pretrained=True)
    assert "sigmae_vit_base.ssl4eo_s12_fgmae" in BACKBONE_REGISTRY and "sigmae_vit_base.nope" not in BACKBONE_REGISTRY
    with pytest.warns(UserWarning, match=r"names pretrained weights but pretrained is not set.*initialised at random"):
        model = BACKBONE_REGISTRY.build("sigmae_vit_small.ssl4eo_s12_fgmae")
    assert model.load_report is None and len(model.bands) == 13 and model.img_size == (224, 224)  # their architecture
    given = BACKBONE_REGISTRY.build("sigmae_vit_small.ssl4eo_s12_fgmae", pretrained=False, bands=["B02", "B03"], img_size=64)
    assert given.bands == ("B02", "B03") and given.img_size == (64, 64)  # what the config gives wins


def test_catalogue_weights_fit_other_bands_and_sizes_by_name(published):
    """HLS bands and 512 px (a Prithvi config) from the 13-band 224 px SSL4EO-S12 file: each HLS band takes its
    Sentinel-2 band's kernel slice (BLUE ← B02, NIR_NARROW ← B8A …), the 14×14 table is resampled to 32×32."""
    hub, _ = published
    hls = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
    model = BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True, bands=hls, img_size=512)
    state = _state_of(hub, PRETRAINED_CFGS["sigmae_vit_small"]["ssl4eo_s12_mae"])
    kernel = state["patch_embed.proj.weight"]
    for i, source in enumerate((1, 2, 3, 8, 11, 12)):  # B02, B03, B04, B8A, B11, B12 among the 13 L1C bands
        assert torch.equal(model.tokenizer.proj.weight[:, 0, i], kernel[:, source]), hls[i]
    assert model.pos_embed.spatial.shape == (1, 32 * 32, 384) and model.load_report.new_bands == []
    assert "encoder: spatial positions 14×14 → 32×32 (interpolate)" in model.load_report.adapted


def test_a_model_from_the_catalogue_carries_source_licence_terms_and_citation_into_its_card(published, tmp_path):
    model = BACKBONE_REGISTRY.build("s2mae_vit_base.spectralgpt_plus", pretrained=True, bands=["B02", "B03", "B04", "B08"])
    model.save_pretrained(tmp_path / "org" / "finetuned")
    card = (tmp_path / "org" / "finetuned" / "README.md").read_text()
    assert "| B08 | 832.8 | – | – |" in card  # SpectralGPT's scaling has no per-band statistics
    hls = BACKBONE_REGISTRY.build("sigmae_vit_small", pretrained=True, bands=["BLUE", "NIR_NARROW"], img_size=64)
    hls.save_pretrained(tmp_path / "org" / "hls")
    card_hls = (tmp_path / "org" / "hls" / "README.md").read_text()  # the 13-band statistics, by band: BLUE ← B02
    assert "| BLUE | 490 | 0 | 10000 |" in card_hls and "| NIR_NARROW | 865 | 0 | 10000 |" in card_hls
    for text in ("SpectralGPT (SpectralGPT+.pth, https://zenodo.org/records/8412455)", "license: other",
                 "terms are those of Zenodo record 8412455", "Cite: Hong, D.", "each image's bands min–max scaled",
                 "BigEarthNet-S2"):  # fmt: skip
        assert text in card, text
    config = (tmp_path / "org" / "finetuned" / "config.json").read_text()
    assert "zenodo_record" not in config and "converter" not in config  # the folder is in our own layout


def test_the_checksum_helpers_agree_with_hashlib(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(3_000_000))
    assert downloads_module._digest(path, "md5") == hashlib.md5(path.read_bytes()).hexdigest()
    ssl = ssl4eo_state("small")
    assert ssl["pos_embed"][0, 0].abs().sum() == 0 and ssl["patch_embed.proj.weight"].shape == (384, 13, 16, 16)


def test_a_run_names_the_catalogue_weights_it_started_from_without_downloading():
    from terratorch_specmae.deployment import FineTunedModel
    from terratorch_specmae.weights.catalogue import entry_of_run

    fgmae = entry_of_run({"backbone": "sigmae_vit_base.ssl4eo_s12_fgmae", "backbone_pretrained": True})
    assert fgmae is PRETRAINED_CFGS["sigmae_vit_base"]["ssl4eo_s12_fgmae"]
    assert entry_of_run({"model": "s2mae_vit_base_mae", "pretrained": "true"}).tag == "s2mae_vit_base_mae.spectralgpt_plus"
    assert entry_of_run({"backbone": "sigmae_vit_base", "backbone_pretrained": False}) is None
    assert entry_of_run({"backbone": "sigmae_vit_base", "backbone_pretrained": True, "backbone_ckpt_path": "x.ckpt"}) is None
    assert entry_of_run({"backbone": "s2mae_vit_tiny", "backbone_pretrained": True}) is None
    meta = FineTunedModel(model=None, task="segmentation", backbone="sigmae_vit_base.ssl4eo_s12_fgmae", bands=["B02"],
                          means=[0.0], stds=[1.0], num_classes=2, class_names=None, input_shape=(1, 64, 64),
                          source="x.ckpt", pretrained=fgmae).metadata()  # fmt: skip
    assert meta["pretrained_weights"] == "sigmae_vit_base.ssl4eo_s12_fgmae" and meta["pretrained_license"] == "cc-by-4.0"
    assert "Feature guided masked autoencoder" in meta["pretrained_citation"]


def test_the_catalogue_benchmark_measures_an_entry_through_the_download_path(published):
    """benchmarks/pretrained_catalogue.py's plumbing, on the stand-ins (the real run needs a network)."""
    import importlib.util

    from cli_runner import ROOT

    spec = importlib.util.spec_from_file_location("pretrained_catalogue", ROOT / "benchmarks/pretrained_catalogue.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.measure("sigmae_vit_small", "ssl4eo_s12_mae")
    assert row["load_report"]["layout"] == "timm-vit" and row["load_report"]["unexpected"] == []
    assert row["load_report_on_chip_bands"]["new_bands"] == [] and len(row["file"]["sha256"]) == 64
    assert row["features"]["pretrained"]["finite"] and row["features"]["random_init"]["finite"]
    effect = row["class_token_effect"]
    assert -1 <= effect["patch_token_cosine_min"] <= effect["patch_token_cosine_mean"] <= 1
