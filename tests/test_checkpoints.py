"""Pretrain → fine-tune weight transfer and the errors of bad checkpoint files."""

import pytest
import torch
from safetensors.torch import save_file
from terratorch.registry import BACKBONE_REGISTRY

from terratorch_specmae.tasks import SpectralMAETask

MODEL_ARGS = {
    "model": "s2mae_vit_tiny_mae",
    "bands": "landsat7",
    "img_size": 32,
    "decoder_embed_dim": 32,
    "decoder_depth": 1,
    "decoder_num_heads": 2,
}


@pytest.fixture(scope="module")
def pretrain_ckpt(tmp_path_factory):
    """A checkpoint in Lightning's layout, written from the pretraining task itself."""
    task = SpectralMAETask(model_args=MODEL_ARGS)
    with torch.no_grad():
        for p in task.parameters():
            p.add_(torch.randn_like(p))  # weights that differ from any fresh initialisation
    path = tmp_path_factory.mktemp("ckpt") / "pretrain.ckpt"
    torch.save({"state_dict": task.state_dict(), "epoch": 3, "hyper_parameters": dict(task.hparams)}, path)
    return path, task.model.encoder.state_dict()


def test_encoder_weights_load_from_a_pretraining_checkpoint(pretrain_ckpt):
    path, pretrained = pretrain_ckpt
    backbone = BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands="landsat7", img_size=32, ckpt_path=str(path))
    loaded = backbone.state_dict()
    assert loaded.keys() == pretrained.keys()
    for key, value in pretrained.items():
        assert torch.equal(loaded[key], value), key


def test_safetensors_and_bare_state_dicts(tmp_path, pretrain_ckpt):
    _, pretrained = pretrain_ckpt
    save_file({k: v.contiguous() for k, v in pretrained.items()}, tmp_path / "enc.safetensors")
    torch.save(pretrained, tmp_path / "enc.pt")
    for name in ("enc.safetensors", "enc.pt"):
        backbone = BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands="landsat7", img_size=32, ckpt_path=str(tmp_path / name))
        assert torch.equal(backbone.blocks[3].attn.qkv.weight, pretrained["blocks.3.attn.qkv.weight"])


def test_bad_checkpoints_are_clear_errors(tmp_path, pretrain_ckpt):
    path, _ = pretrain_ckpt
    build = lambda **kw: BACKBONE_REGISTRY.build("s2mae_vit_tiny", img_size=32, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="Checkpoint file not found"):
        build(bands="landsat7", ckpt_path=str(tmp_path / "missing.ckpt"))
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="Could not read checkpoint"):
        build(bands="landsat7", ckpt_path=str(corrupt))
    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.bias": torch.zeros(10)}, other)
    with pytest.raises(ValueError, match="holds no weights of a SpectralViT.*conv1.weight"):
        build(bands="landsat7", ckpt_path=str(other))
    corrupt_st = tmp_path / "corrupt.safetensors"
    corrupt_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="Could not read checkpoint .*corrupt.safetensors"):
        build(bands="landsat7", ckpt_path=str(corrupt_st))
    # another architecture: a wider encoder
    with pytest.raises(ValueError, match=r"the checkpoint's encoder width \(embed_dim\) is 192, this model's 384"):
        BACKBONE_REGISTRY.build("s2mae_vit_small", bands="landsat7", img_size=32, ckpt_path=str(path))
    # 2D patch tokens cannot take cube weights
    with pytest.raises(ValueError, match="tokens span 3 bands \\(cubes\\), this model's 6 \\(2D patches\\)"):
        BACKBONE_REGISTRY.build("sigmae_vit_tiny", bands="landsat7", img_size=32, patch_size=8, ckpt_path=str(path))
    with pytest.raises(ValueError, match="8×8 px patches, this model's 16×16; set patch_size: 8"):
        BACKBONE_REGISTRY.build("s2mae_vit_tiny", bands="landsat7", img_size=32, patch_size=16, ckpt_path=str(path))
