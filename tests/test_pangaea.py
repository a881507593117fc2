"""PANGAEA-bench: the encoder wrapper and configs in docs/pangaea/.

PANGAEA is not on PyPI. The YAMLs are checked against the models they build everywhere; the
wrapper itself is tested against PANGAEA's real ``Encoder`` base class when ``pangaea`` (a clone
of PANGAEA-bench, see docs/pangaea/README.md) is importable, and skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import logging
import re

import pytest
import torch
import yaml
from cli_runner import ROOT
from terratorch.registry import BACKBONE_REGISTRY

DOCS = ROOT / "docs/pangaea"
NO_PANGAEA = (
    "PANGAEA-bench is not installed (not on PyPI): clone it at the commit in docs/pangaea/README.md "
    "and put it on PYTHONPATH to test the wrapper against its Encoder base class"
)
TINY = {"embed_dim": 16, "depth": 4, "num_heads": 2}


def _ours(name: str) -> str:  # PANGAEA's Sentinel-2 names (B1, B8A) as ours (B01, B8A), for the YAML check
    return re.sub(r"^B(\d)$", r"B0\1", name)


@pytest.mark.parametrize("config", ["specmae_s2mae.yaml", "specmae_sigmae.yaml"])
def test_encoder_yamls_match_the_models_they_build(config):
    cfg = yaml.safe_load((DOCS / config).read_text())
    assert cfg["_target_"] == "pangaea.encoders.specmae_encoder.SpecMAE_Encoder"
    options = {k: cfg[k] for k in ("patch_size", "fold") if k in cfg}
    bands = [_ours(b) for modality in cfg["input_bands"].values() for b in modality]
    model = BACKBONE_REGISTRY.build(cfg["backbone"], bands=bands, img_size=cfg["input_size"],
                                    out_indices=cfg["output_layers"], **options)
    assert model.out_channels == [cfg["output_dim"]] * len(cfg["output_layers"])
    assert len(bands) == 12 and model.img_size == (128, 128)


@pytest.fixture(scope="module")
def wrapper():
    pytest.importorskip("pangaea.encoders.base", reason=NO_PANGAEA)
    spec = importlib.util.spec_from_file_location("specmae_encoder", DOCS / "specmae_encoder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_band_names_map_onto_ours(wrapper):
    assert [wrapper.specmae_band(b) for b in ("B1", "B02", "B8A", "b8a", "B12", "VV")] == ["B01", "B02", "B8A", "B8A", "B12", "VV"]
    with pytest.raises(ValueError, match="Unknown band name 'XYZ'"):
        wrapper.specmae_band("XYZ")


def test_wrapper_is_a_pangaea_encoder_with_the_promised_output_shapes(wrapper, tmp_path, caplog):
    from pangaea.encoders.base import Encoder

    bands = {"optical": ["B2", "B3", "B4", "B8A", "B11", "B12"], "sar": ["VV", "VH"]}
    encoder = wrapper.SpecMAE_Encoder(encoder_weights=None, input_size=32, input_bands=bands, output_layers=[1, 3],
                                      output_dim=3 * 16, backbone="s2mae_vit_tiny", **TINY)
    assert isinstance(encoder, Encoder)
    assert encoder.model.bands == ("B02", "B03", "B04", "B8A", "B11", "B12", "VV", "VH")
    assert (encoder.output_layers, encoder.output_dim, encoder.multi_temporal, encoder.pyramid_output) == ([1, 3], [48, 48], False, False)
    image = {"optical": torch.randn(2, 6, 32, 32), "sar": torch.randn(2, 2, 32, 32)}
    out = encoder(image)
    assert [o.shape for o in out] == [(2, 48, 4, 4)] * 2  # 8 bands = 3 groups of 16 channels, 32/8 = 4 cells

    with caplog.at_level(logging.INFO):
        encoder.load_encoder_weights(logging.getLogger("pangaea"))  # no weights: stays initialised, says so
    assert "random initialisation" in caplog.text

    trained = wrapper.SpecMAE_Encoder(encoder_weights=None, input_size=32, input_bands=bands, output_layers=[1, 3],
                                      output_dim=48, backbone="s2mae_vit_tiny", **TINY)
    trained.model.save_pretrained(tmp_path / "weights")
    encoder.encoder_weights = str(tmp_path / "weights")
    encoder.load_encoder_weights(logging.getLogger("pangaea"))
    torch.testing.assert_close(encoder(image), trained(image))

    with pytest.raises(ValueError, match=r"output_dim 768 does not match.*\[48, 48\].*set output_dim to 48"):
        wrapper.SpecMAE_Encoder(encoder_weights=None, input_size=32, input_bands=bands, output_layers=[1, 3],
                                output_dim=768, backbone="s2mae_vit_tiny", **TINY)
