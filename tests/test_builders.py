"""Models build architecture only; the builders the registries call build → load weights → switch run options."""

from __future__ import annotations

import inspect

import pytest
import torch
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY
from tiny import TINY_DECODER, TINY_ENCODER, randomised

from terratorch_specmae.backbones import build_mae, build_ssmae
from terratorch_specmae.models import SSMAE, MAEDecoder, SpectralMAE, SpectralViT, SSMAEEncoder
from terratorch_specmae.models.run_switches import RUN_OPTIONS
from terratorch_specmae.weights import LOAD_OPTIONS

ENC, DEC = TINY_ENCODER, TINY_DECODER


@pytest.mark.parametrize("cls", [SpectralViT, SpectralMAE, SSMAE, SSMAEEncoder, MAEDecoder])
def test_constructors_take_architecture_only(cls):
    params = set(inspect.signature(cls).parameters)
    assert not params & {*LOAD_OPTIONS, *RUN_OPTIONS, "pretrained"}, params & {*LOAD_OPTIONS, *RUN_OPTIONS}


def test_loading_and_run_options_given_to_a_constructor_are_type_errors():
    with pytest.raises(TypeError, match="ckpt_path"):
        SpectralViT(**ENC, ckpt_path="weights.pt")
    with pytest.raises(TypeError, match="compile"):
        SSMAE(bands="landsat7", compile=True)


def test_the_builder_loads_then_switches_and_the_yaml_names_are_unchanged(tmp_path):
    source = randomised(build_mae("tiny", "s2mae", **ENC, **DEC)).eval()
    source.save_pretrained(tmp_path / "mae")
    # as a TerraTorch config hands them over: model_args of a full model, strings from the command line
    model = FULL_MODEL_REGISTRY.build(
        "s2mae_vit_tiny_mae", **ENC, **DEC, ckpt_path=str(tmp_path / "mae"), grad_checkpointing="true",
        compile={"backend": "eager"}, new_band_init="zero",
    ).eval()
    assert model.load_report.layout == "mae-state"
    assert model.encoder.grad_checkpointing and model.decoder.grad_checkpointing
    assert model.encoder.compile_options == model.decoder.compile_options == {"dynamic": False, "backend": "eager"}
    assert model.state_dict().keys() == source.state_dict().keys()  # compiled in place: the names stay
    x = torch.randn(2, 6, 32, 32)
    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model(x, generator=generator()).pred, source(x, generator=generator()).pred)
    assert not {*RUN_OPTIONS, *LOAD_OPTIONS} & set(model.hub_config())  # neither is part of what the model is


def test_run_switches_are_methods_on_every_model():
    mae = build_mae("tiny", "s2mae", **ENC, **DEC)
    mae.set_grad_checkpointing()
    assert mae.encoder.grad_checkpointing and mae.decoder.grad_checkpointing
    mae.set_grad_checkpointing(False)
    assert not mae.encoder.grad_checkpointing and not mae.decoder.grad_checkpointing
    ssmae = build_ssmae(True, bands="landsat7", window_size=5, embed_dim=32, depth=1, num_heads=2, **DEC)
    ssmae.compile_blocks({"backend": "eager"})
    assert all(part.compile_options for part in ssmae._switch_parts()) and len(ssmae._switch_parts()) == 4
    with pytest.raises(TypeError, match="grad_checkpointing must be true or false, got 'yes'"):
        mae.set_grad_checkpointing("yes")
    with pytest.raises(TypeError, match="compile must be true, false or a dict"):
        mae.compile_blocks("max-autotune")


def test_pretrained_false_from_the_command_line_loads_nothing():
    backbone = BACKBONE_REGISTRY.build("s2mae_vit_tiny", **ENC, pretrained="false")
    assert backbone.load_report is None
    encoders = BACKBONE_REGISTRY.build("ssmae_base", bands="landsat7", window_size=5, pretrained="False")
    assert encoders.load_report is None
    with pytest.raises(ValueError, match="No pretrained weights are registered for 'ssmae_base'"):
        BACKBONE_REGISTRY.build("ssmae_base", bands="landsat7", window_size=5, pretrained="true")
    with pytest.raises(ValueError, match="pretrained must be true or false, got 'maybe'"):
        BACKBONE_REGISTRY.build("s2mae_vit_tiny", **ENC, pretrained="maybe")


def test_a_bad_load_option_is_an_error_even_without_weights():
    with pytest.raises(ValueError, match=r"new_band_init must be one of \('wavelength', 'zero', 'error'\), got 'nearest'"):
        BACKBONE_REGISTRY.build("s2mae_vit_tiny", **ENC, new_band_init="nearest")


def test_from_pretrained_takes_load_options_and_run_switches(tmp_path):
    source = randomised(build_mae("tiny", "s2mae", **ENC, **DEC))
    source.save_pretrained(tmp_path / "mae")
    model = SpectralMAE.from_pretrained(tmp_path / "mae", grad_checkpointing=True, new_band_init="zero")
    assert model.encoder.grad_checkpointing and model.decoder.grad_checkpointing
    assert model.load_report.layout == "mae-state" and model.load_report.container == "save_pretrained folder"
    assert torch.equal(model.decoder.pred.weight, source.decoder.pred.weight)
