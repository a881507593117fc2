"""Publishing and loading through the real huggingface_hub code, against a Hub stand-in on loopback."""

import json

import huggingface_hub
import pytest
import torch
from hub_server import LocalHub
from huggingface_hub import constants
from terratorch.registry import BACKBONE_REGISTRY

from terratorch_specmae.backbones import build_backbone, build_mae
from terratorch_specmae.weights import PretrainedCfg, register_pretrained_cfg
from terratorch_specmae.models import SpectralMAE, SpectralViT
from terratorch_specmae.models.ssmae import SSMAE, SSMAEEncoder

L7 = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
MAE_ARGS = {"bands": L7, "img_size": 32, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2}


def randomised(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """huggingface_hub pointed at a LocalHub with an empty cache (as HF_ENDPOINT / HF_HUB_CACHE would)."""
    with LocalHub() as server:
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield server


@pytest.mark.parametrize("kind", ["encoder", "mae", "ssmae", "ssmae_encoder"])
def test_save_then_load_gives_identical_outputs(tmp_path, kind):
    x = torch.randn(2, 6, 32, 32)
    if kind == "encoder":
        model, cls = randomised(build_backbone("tiny", "s2mae", bands=L7, img_size=32, out_indices=[5, 11])), SpectralViT
        run = lambda m: m(x)  # noqa: E731
    elif kind == "mae":
        model, cls = randomised(build_mae("tiny", "s2mae", **MAE_ARGS)), SpectralMAE
        run = lambda m: [m(x, generator=torch.Generator().manual_seed(0)).pred]  # noqa: E731
    else:
        x = torch.randn(2, 6, 7, 7)
        cls = SSMAE if kind == "ssmae" else SSMAEEncoder
        model = randomised(cls(bands=L7, embed_dim=32, num_heads=4, **({"decoder_embed_dim": 32} if kind == "ssmae" else {})))
        run = (lambda m: [m(x, generator=torch.Generator().manual_seed(0)).pred]) if kind == "ssmae" else (lambda m: m(x))  # noqa: E731
    model.save_pretrained(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = cls.from_pretrained(tmp_path / "out")
    assert type(loaded) is cls and not loaded.training
    for a, b in zip(run(model), run(loaded), strict=True):
        assert torch.equal(a, b)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_model_card_states_bands_normalisation_data_and_masking(tmp_path):
    model = randomised(build_mae("tiny", "s2mae", **MAE_ARGS))
    model.pretrained_cfg = PretrainedCfg(
        mean=[76.2, 64.9, 63.2, 67.2, 91.3, 63.8], std=[13.6, 15.3, 22.6, 17.9, 32.1, 31.0],
        pretraining_data="Landsat 7 Olinda chips", license="apache-2.0",
    )  # fmt: skip
    model.save_pretrained(tmp_path / "org" / "s2mae-tiny")
    card = (tmp_path / "org" / "s2mae-tiny" / "README.md").read_text()
    for text in ("license: apache-2.0", "| SWIR_1 | 1610 | 91.3 | 32.1 |", "Landsat 7 Olinda chips",
                 "cube_random, ratio 0.9", "32×32 px", "backbone: s2mae_vit_tiny", "backbone_ckpt_path: hf://org/s2mae-tiny"):  # fmt: skip
        assert text in card, text
    config = json.loads((tmp_path / "org" / "s2mae-tiny" / "config.json").read_text())
    assert config["encoder"]["bands"] == L7 and config["masking"] == "cube_random"
    assert config["specmae"]["wavelengths_nm"] == [490.0, 560.0, 665.0, 842.0, 1610.0, 2190.0]
    assert config["specmae"]["mean"][4] == 91.3
    loaded = SpectralMAE.from_pretrained(tmp_path / "org" / "s2mae-tiny")
    assert loaded.pretrained_cfg.pretraining_data == "Landsat 7 Olinda chips" and loaded.pretrained_cfg.std[0] == 13.6


def test_model_card_metadata_is_what_the_hub_filters_on(tmp_path):
    """The card's front matter, read back by huggingface_hub's own ModelCard, carries library_name,
    licence, tags (ours, terratorch, earth-observation, the family, the sensor), datasets and the
    pipeline tag."""
    model = randomised(build_mae("tiny", "s2mae", **MAE_ARGS))
    model.pretrained_cfg = PretrainedCfg(license="apache-2.0", datasets=["org/olinda-landsat7", "eurosat"])
    model.save_pretrained(tmp_path / "org" / "s2mae-tiny")
    data = huggingface_hub.ModelCard.load(tmp_path / "org" / "s2mae-tiny" / "README.md").data
    assert isinstance(data, huggingface_hub.ModelCardData)
    assert data.library_name == "terratorch-specmae" and data.license == "apache-2.0"
    assert data.pipeline_tag == "image-feature-extraction"
    assert data.datasets == ["org/olinda-landsat7", "eurosat"]
    assert {"terratorch", "earth-observation", "remote-sensing", "masked-autoencoder", "s2mae", "landsat-7"} <= set(data.tags)
    assert "| licence | apache-2.0 |" in (tmp_path / "org" / "s2mae-tiny" / "README.md").read_text()

    # no licence given: none claimed (not "other"), and the card says so
    model.pretrained_cfg = PretrainedCfg()
    model.save_pretrained(tmp_path / "org" / "unlicensed")
    data = huggingface_hub.ModelCard.load(tmp_path / "org" / "unlicensed" / "README.md").data
    assert data.license is None and data.datasets is None
    assert "| licence | not recorded |" in (tmp_path / "org" / "unlicensed" / "README.md").read_text()


@pytest.mark.parametrize("field, value, message", [
    ("license", "Apache 2.0", "licence 'Apache 2.0' is not a Hub licence identifier"),
    ("datasets", ["not a/dataset id"], "dataset 'not a/dataset id' is not a Hub dataset id"),
])  # fmt: skip
def test_a_card_the_hub_would_not_read_writes_nothing(tmp_path, field, value, message):
    model = randomised(build_mae("tiny", "s2mae", **MAE_ARGS))
    model.pretrained_cfg = PretrainedCfg(**{field: value})
    with pytest.raises(ValueError, match=message):
        model.save_pretrained(tmp_path / "org" / "bad")
    assert list(tmp_path.iterdir()) == []  # not the folder, its parent, nor a temporary folder


@pytest.mark.parametrize("bands, tags", [
    ("landsat7", ["landsat-7"]),
    ("sentinel2_l2a", ["sentinel-2"]),
    (["B02", "B03", "B04", "B08"], ["sentinel-2"]),
    ("landsat8", ["landsat-8", "landsat-9"]),
    ("hls", ["hls", "landsat-8", "landsat-9"]),
    ([f"{400 + 10 * i}nm" for i in range(40)], ["hyperspectral"]),
    (["BLUE", "GREEN", "RED", "B08"], ["multispectral"]),
])  # fmt: skip
def test_sensor_tags_come_from_the_presets_that_hold_the_bands(bands, tags):
    from terratorch_specmae.bands import resolve_bands
    from terratorch_specmae.weights.card import sensor_tags

    assert sensor_tags(list(resolve_bands(bands))) == tags


def test_an_encoder_loads_from_a_published_mae_with_other_bands(tmp_path):
    mae = randomised(build_mae("tiny", "s2mae", **MAE_ARGS))
    mae.save_pretrained(tmp_path / "mae")
    encoder = SpectralViT.from_pretrained(tmp_path / "mae", bands=["B02", "B03", "B04"], img_size=64)
    assert encoder.bands == ("B02", "B03", "B04") and encoder.img_size == (64, 64)
    assert torch.equal(encoder.pos_embed.spectral[0, 0], mae.encoder.pos_embed.spectral[0, 0])  # B02-B04 = BLUE-RED
    assert torch.equal(encoder.blocks[3].norm1.weight, mae.encoder.blocks[3].norm1.weight)


def test_pretrained_true_downloads_through_the_hub_then_uses_the_cache(tmp_path, hub, catalogue_restored):
    source = randomised(build_backbone("tiny", "s2mae", bands=L7, img_size=32))
    source.save_pretrained(tmp_path / "v1")
    hub.publish("specmae/s2mae-tiny-l7", tmp_path / "v1", revision="v1")
    v1 = source.pos_embed.spectral.detach().clone()
    with torch.no_grad():
        source.pos_embed.spectral.add_(1.0)
    source.save_pretrained(tmp_path / "v2")
    hub.publish("specmae/s2mae-tiny-l7", tmp_path / "v2", revision="main")

    register_pretrained_cfg("s2mae_vit_tiny", PretrainedCfg(hf_hub_id="specmae/s2mae-tiny-l7"))
    model = BACKBONE_REGISTRY.build("s2mae_vit_tiny", pretrained=True, bands=L7, img_size=32)
    assert torch.equal(model.pos_embed.spectral, source.pos_embed.spectral)
    downloads = hub.downloads()
    assert sorted(d.rsplit("/", 1)[-1] for d in downloads) == ["config.json", "model.safetensors"]
    BACKBONE_REGISTRY.build("s2mae_vit_tiny", pretrained=True, bands=L7, img_size=32)
    assert hub.downloads() == downloads  # second build: metadata checked, files from the cache

    # a revision, in each spelling of a Hub reference
    for ckpt in ("hf://specmae/s2mae-tiny-l7@v1", "hf://specmae/s2mae-tiny-l7@v1/model.safetensors",
                 {"repo_id": "specmae/s2mae-tiny-l7", "filename": "model.safetensors", "revision": "v1"}):  # fmt: skip
        old = BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands=L7, img_size=32, ckpt_path=ckpt)
        assert torch.equal(old.pos_embed.spectral, v1), ckpt
    assert SpectralViT.from_pretrained("specmae/s2mae-tiny-l7", revision="v1").pos_embed.spectral.equal(v1)


def test_offline_mode_reads_the_cache_and_says_what_is_missing(tmp_path, hub, monkeypatch):
    source = randomised(build_backbone("tiny", "s2mae", bands=L7, img_size=32))
    source.save_pretrained(tmp_path / "folder")
    hub.publish("specmae/enc", tmp_path / "folder")
    BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands=L7, img_size=32, ckpt_path="hf://specmae/enc")  # fills the cache
    hub.__exit__()  # the Hub goes away
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands=["B02", "B03", "B04"], img_size=32, ckpt_path="hf://specmae/enc")
    assert torch.equal(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    with pytest.raises(ValueError, match="revision v9.*not in the local cache.*HF_HUB_OFFLINE"):
        BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands=L7, img_size=32, ckpt_path="hf://specmae/enc@v9")


def test_hub_errors_are_clear(hub, catalogue_restored):
    hub.publish("specmae/enc", {"notes.txt": b"no weights here"})
    build = lambda ckpt: BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands=L7, img_size=32, ckpt_path=ckpt)  # noqa: E731
    with pytest.raises(ValueError, match="model.safetensors of Hub repo 'specmae/enc' at revision main"):
        build("hf://specmae/enc")
    with pytest.raises(ValueError, match="Hub repo 'specmae/absent'"):
        build("hf://specmae/absent/model.safetensors")
    with pytest.raises(ValueError, match="at revision nope"):
        build({"repo_id": "specmae/enc", "filename": "notes.txt", "revision": "nope"})
    with pytest.raises(ValueError, match="Bad Hub reference 'hf://only-a-name'"):
        build("hf://only-a-name")
    with pytest.raises(ValueError, match="needs repo_id"):
        build({"repo": "specmae/enc"})
    with pytest.raises(ValueError, match="No pretrained weights are registered for 'sigmae_vit_tiny'"):
        BACKBONE_REGISTRY.build("sigmae_vit_tiny", pretrained=True, bands=L7)


def test_push_to_hub_uploads_the_saved_folder(monkeypatch, tmp_path):
    """The upload itself is huggingface_hub's; we check what it is handed."""
    seen = {}

    def create_repo(self, repo_id, **kwargs):
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        seen["repo_id"] = repo_id
        seen["files"] = {p.name: p.read_bytes() for p in __import__("pathlib").Path(folder_path).iterdir()}
        return "https://huggingface.co/commit/0"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    model = randomised(build_backbone("tiny", "sigmae", bands=L7, img_size=32, patch_size=8))
    model.push_to_hub("my-org/sigmae-tiny")
    assert seen["repo_id"] == "my-org/sigmae-tiny"
    assert set(seen["files"]) == {"README.md", "config.json", "model.safetensors"}
    assert b"backbone_ckpt_path: hf://my-org/sigmae-tiny" in seen["files"]["README.md"]
    assert b"backbone: sigmae_vit_tiny" in seen["files"]["README.md"]
