"""Every known checkpoint layout (terratorch_specmae.weights.layouts.LAYOUTS), one row each.

Each case writes a file in one layout — as the thing that makes such files writes it (a Lightning
checkpoint of a task, ``save_pretrained``, ``torch.save`` of a TerraTorch model, SpectralGPT's
training script) — loads it into a model through the builders' ``ckpt_path``, and checks that the
load report names the layout and container, and that every encoder (and, where the file has one,
every decoder) holds the file's tensors exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_spectralgpt import spectralgpt_state, write_checkpoint
from tiny import TINY_DECODER, TINY_ENCODER, TINY_SSMAE, randomised, tiny_encoder, tiny_mae, tiny_ssmae

from terratorch_specmae.backbones import build_backbone, build_mae, build_ssmae
from terratorch_specmae.models import SSMAE, SpectralMAE, SpectralViT
from terratorch_specmae.weights import LAYOUTS, load_weights, match_layout
from terratorch_specmae.weights.converters import spectralgpt_state_to_ours, timm_vit_state_to_ours

ENC, DEC, SS = TINY_ENCODER, TINY_DECODER, TINY_SSMAE


def encoder() -> SpectralViT:
    return randomised(tiny_encoder())


def mae() -> SpectralMAE:
    return randomised(tiny_mae())


def ssmae() -> SSMAE:
    return randomised(tiny_ssmae())


def lightning(path: Path, state: dict, **hparams) -> str:
    torch.save({"state_dict": state, "epoch": 1, "global_step": 10, "hyper_parameters": hparams}, path)
    return str(path)


def prefixed(prefix: str, state: dict) -> dict:
    return {prefix + k: v for k, v in state.items()}


@dataclass
class Case:
    layout: str
    container: str
    write: Callable[[Path], tuple[str, dict[str, dict]]]  # → (ckpt_path, {module path in target: expected state})
    target: Callable[..., torch.nn.Module]  # builds the model to load into, given ckpt_path
    fresh: tuple[str, ...] = ()  # target decoders the file has no weights for


def _ssmae_lightning(t):
    model = ssmae()
    path = lightning(t / "ssmae.ckpt", prefixed("model.", model.state_dict()), model_args={"model": "ssmae_base_mae", **SS})
    return path, {"spatial": model.spatial.encoder.state_dict(), "spectral": model.spectral.encoder.state_dict()}


def _ssmae_finetuning(t):
    backbone = ssmae().to_encoder()
    state = {**prefixed("model.encoder.", backbone.state_dict()), "model.head.head.weight": torch.zeros(3, 64)}
    return lightning(t / "ft.ckpt", state), {"spatial": backbone.spatial.state_dict(), "spectral": backbone.spectral.state_dict()}


def _ssmae_folder(t):
    model = ssmae()
    model.save_pretrained(t / "ssmae")
    return str(t / "ssmae"), {
        "spatial.encoder": model.spatial.encoder.state_dict(), "spatial.decoder": model.spatial.decoder.state_dict(),
        "spectral.encoder": model.spectral.encoder.state_dict(), "spectral.decoder": model.spectral.decoder.state_dict(),
    }  # fmt: skip


def _ssmae_encoder_safetensors(t):
    backbone = ssmae().to_encoder()
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, t / "enc.safetensors")
    return str(t / "enc.safetensors"), {"spatial": backbone.spatial.state_dict(), "spectral": backbone.spectral.state_dict()}


def _ssmae_terratorch_model(t):
    backbone = ssmae().to_encoder()
    torch.save({**prefixed("encoder.", backbone.state_dict()), "head.weight": torch.zeros(3, 64)}, t / "model.pt")
    return str(t / "model.pt"), {"spatial": backbone.spatial.state_dict(), "spectral": backbone.spectral.state_dict()}


def _pretraining(t):
    model = mae()
    path = lightning(t / "pre.ckpt", prefixed("model.", model.state_dict()), model_args={"model": "s2mae_vit_tiny_mae", **ENC})
    return path, {"encoder": model.encoder.state_dict(), "decoder": model.decoder.state_dict()}


def _finetuning(t, prefix="model.encoder."):
    backbone = encoder()
    state = {**prefixed(prefix, backbone.state_dict()), "model.decoder.fpn1.0.weight": torch.zeros(4, 4),
             "model.head.head.weight": torch.zeros(3, 4)}  # fmt: skip
    return lightning(t / "ft.ckpt", state, model_args={"backbone": "s2mae_vit_tiny", "backbone_bands": "landsat7"}), {
        "encoder": backbone.state_dict()}  # fmt: skip


def _mae_folder(t):
    model = mae()
    model.save_pretrained(t / "mae")
    return str(t / "mae"), {"encoder": model.encoder.state_dict(), "decoder": model.decoder.state_dict()}


def _encoder_prefixed(t):
    backbone = encoder()
    torch.save(prefixed("encoder.", backbone.state_dict()), t / "encoder.pt")
    return str(t / "encoder.pt"), {"encoder": backbone.state_dict()}


def _encoder_folder(t):
    backbone = encoder()
    backbone.save_pretrained(t / "enc")
    return str(t / "enc"), {"encoder": backbone.state_dict()}


def _model_prefixed(t):
    backbone = encoder()
    torch.save(prefixed("model.", backbone.state_dict()), t / "task.pt")
    return str(t / "task.pt"), {"encoder": backbone.state_dict()}


SPECTRALGPT = {"width": 64, "depth": 2, "decoder_width": 32, "decoder_depth": 1, "side": 4}


def _spectralgpt(t):
    state = spectralgpt_state(**SPECTRALGPT)
    path = write_checkpoint(t / "SpectralGPT.pth", state)
    ours = spectralgpt_state_to_ours(state)
    split = {part: {k[len(part) + 1 :]: v for k, v in ours.items() if k.startswith(part + ".")} for part in ("encoder", "decoder")}
    return str(path), split


def _spectralgpt_mae(ckpt_path):
    return build_mae("tiny", "s2mae", bands="sentinel2_l2a", img_size=32, embed_dim=64, depth=2, num_heads=4,
                     decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4, decoder_pos_embed="learnable",
                     ckpt_path=ckpt_path)  # fmt: skip


def _into_mae(ckpt_path):
    return build_mae("tiny", "s2mae", **ENC, **DEC, ckpt_path=ckpt_path)


TIMM_VIT = {"img_size": 32, "patch_size": 16, "in_chans": 6, "embed_dim": 16, "depth": 1, "num_heads": 2}


def _timm_vit(t):
    """A timm ViT encoder with a class token, saved as a plain state dict (as SSL4EO-S12's ``_enc.pth`` files are)."""
    import timm

    vit = randomised(timm.models.vision_transformer.VisionTransformer(**TIMM_VIT, num_classes=0))
    state = vit.state_dict()
    torch.save(state, t / "vit_enc.pth")
    return str(t / "vit_enc.pth"), {"encoder": timm_vit_state_to_ours(state)}


def _timm_vit_mae(ckpt_path):
    return build_mae("tiny", "sigmae", bands="landsat7", img_size=32, embed_dim=16, depth=1, num_heads=2, **DEC,
                     ckpt_path=ckpt_path)  # fmt: skip


def _into_ssmae_encoder(ckpt_path):
    return build_ssmae(False, **{k: v for k, v in SS.items() if not k.startswith("decoder")}, ckpt_path=ckpt_path)


def _into_ssmae(ckpt_path):
    return build_ssmae(True, **SS, ckpt_path=ckpt_path)


CASES = [
    Case("ssmae-pretraining-checkpoint", "Lightning checkpoint", _ssmae_lightning, _into_ssmae_encoder),
    Case("ssmae-finetuning-checkpoint", "Lightning checkpoint", _ssmae_finetuning, _into_ssmae_encoder),
    Case("ssmae-state", "save_pretrained folder", _ssmae_folder, _into_ssmae),
    Case("ssmae-encoder-state", "safetensors", _ssmae_encoder_safetensors, _into_ssmae_encoder),
    Case("ssmae-encoder-prefixed-state", "torch state dict", _ssmae_terratorch_model, _into_ssmae_encoder),
    Case("pretraining-checkpoint", "Lightning checkpoint", _pretraining, _into_mae),
    Case("finetuning-checkpoint", "Lightning checkpoint", _finetuning, _into_mae, fresh=("decoder",)),
    Case("temporal-finetuning-checkpoint", "Lightning checkpoint", lambda t: _finetuning(t, "model.encoder.encoder."),
         _into_mae, fresh=("decoder",)),
    Case("mae-state", "save_pretrained folder", _mae_folder, _into_mae),
    Case("encoder-prefixed-state", "torch state dict", _encoder_prefixed, _into_mae, fresh=("decoder",)),
    Case("encoder-state", "save_pretrained folder", _encoder_folder, _into_mae, fresh=("decoder",)),
    Case("model-prefixed-encoder-state", "torch state dict", _model_prefixed, _into_mae, fresh=("decoder",)),
    Case("spectralgpt", "MAE-style checkpoint", _spectralgpt, _spectralgpt_mae),
    Case("timm-vit", "torch state dict", _timm_vit, _timm_vit_mae, fresh=("decoder",)),
]


def test_every_layout_has_a_case():
    assert [c.layout for c in CASES] == [row.name for row in LAYOUTS]


@pytest.mark.parametrize("case", CASES, ids=[c.layout for c in CASES])
@pytest.mark.filterwarnings("ignore:Checkpoint .* has no weights for")
def test_a_file_of_each_layout_loads_and_the_report_names_the_layout(case, tmp_path):
    path, expected = case.write(tmp_path)
    model = case.target(path)
    report = model.load_report
    assert (report.layout, report.container) == (case.layout, case.container)
    modules = dict(model.named_modules())
    for module_path, state in expected.items():
        loaded = modules[module_path].state_dict()
        for key, value in state.items():
            assert torch.equal(loaded[key], value), f"{module_path}.{key}"
    assert sorted(report.fresh) == sorted(case.fresh)
    # the encoder alone (a backbone) takes the file's encoder(s) too
    if not case.layout.startswith("ssmae"):
        backbone = build_backbone("tiny", "s2mae", **{**ENC, **_backbone_overrides(case)}, ckpt_path=path)
        assert backbone.load_report.layout == case.layout
        for key, value in expected["encoder"].items():
            assert torch.equal(backbone.state_dict()[key], value), key


def _backbone_overrides(case: Case) -> dict:
    if case.layout == "spectralgpt":
        return {"bands": "sentinel2_l2a", "img_size": 32, "embed_dim": 64, "depth": 2, "num_heads": 4}
    if case.layout == "timm-vit":
        return {"patch_size": 16, "spectral_patch_size": None}
    return {}


def test_a_spectralgpt_file_loads_onto_other_bands_by_wavelength(tmp_path):
    """SpectralGPT's 12 Sentinel-2 bands fitted to Landsat 7's through ckpt_path: the layout supplies the
    bands and image size the file does not record."""
    path, _ = _spectralgpt(tmp_path)
    state = spectralgpt_state_to_ours(torch.load(path, weights_only=False)["model"])
    landsat = build_backbone("tiny", "s2mae", bands="landsat7", img_size=64, embed_dim=64, depth=2, num_heads=4,
                             ckpt_path=path)  # fmt: skip
    table = state["encoder.pos_embed.spectral"][0]  # groups (B01 B02 B03) (B04 B05 B06) (B07 B08 B8A) (B09 B11 B12)
    assert torch.allclose(landsat.pos_embed.spectral[0, 0], (table[0] + table[0] + table[1]) / 3, atol=1e-6)
    assert landsat.load_report.layout == "spectralgpt" and landsat.pos_embed.spatial.shape[1] == 64


def test_a_model_of_other_branches_is_a_clear_error(tmp_path):
    path, _ = _ssmae_folder(tmp_path)
    with pytest.raises(ValueError, match=r"is the state of an SS-MAE pretraining model .*\(ssmae-state: spatial, "
                                         r"spectral\); it holds no weights of a SpectralViT for the model"):
        build_backbone("tiny", "s2mae", **ENC, ckpt_path=path)
    path, _ = _encoder_folder(tmp_path)
    with pytest.raises(ValueError, match=r"\(encoder-state: one encoder\); it holds no weights of a SpectralViT for "
                                         r"spatial\.encoder of this SSMAE"):
        _into_ssmae(path)


def test_unknown_keys_match_no_layout_and_the_error_lists_what_was_looked_for(tmp_path):
    state = {"conv1.weight": torch.zeros(4, 3, 3, 3)}
    assert match_layout(state) is None
    torch.save(state, tmp_path / "resnet.pt")
    with pytest.raises(ValueError, match=r"in any known layout \(looked for ssmae-pretraining-checkpoint: "
                                         r"model\.spatial\.encoder\.tokenizer\.proj\.weight.* first keys are: conv1\.weight"):
        load_weights(build_backbone("tiny", "s2mae", **ENC), str(tmp_path / "resnet.pt"))
