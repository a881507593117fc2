"""Conformance with TerraTorch's backbone contract, and the spatial layout of folded outputs."""

import pytest
import torch
from terratorch.models import EncoderDecoderFactory
from terratorch.models.necks import ReshapeTokensToImage
from terratorch.registry import BACKBONE_REGISTRY, NECK_REGISTRY

from terratorch_specmae.backbones import VIT_SIZES

SEG_NECKS = [
    {"name": "SelectIndices", "indices": [2, 5, 8, 11]},
    {"name": "ReshapeTokensToImage", "remove_cls_token": False},
    {"name": "LearnedInterpolateToPyramidal"},
]


@pytest.mark.parametrize("size", list(VIT_SIZES))
@pytest.mark.parametrize("fold", ["concat", "mean", "none"])
def test_registry_builds_every_size_with_matching_out_channels(size, fold):
    name = f"s2mae_vit_{size}"
    assert name in BACKBONE_REGISTRY
    model = BACKBONE_REGISTRY.build(name, bands="sentinel2_l2a", img_size=16, fold=fold, out_indices=[0, -1])
    spec = VIT_SIZES[size]
    assert model.depth == spec["depth"] and model.embed_dim == spec["embed_dim"]
    with torch.no_grad():
        out = model(torch.randn(2, 12, 16, 16))
    groups = 4  # 12 bands / t=3
    assert len(out) == len(model.out_channels) == 2
    for o, c in zip(out, model.out_channels, strict=True):
        tokens = 4 if fold != "none" else groups * 4
        assert o.shape == (2, tokens, c)
    assert model.out_channels[0] == spec["embed_dim"] * (groups if fold == "concat" else 1)


def test_attention_runs_through_pytorch_sdpa(tiny_encoder):
    model = tiny_encoder(img_size=16, embed_dim=32, depth=2)
    assert all(block.attn.fused_attn for block in model.blocks)  # timm's F.scaled_dot_product_attention path
    called = []
    original = torch.nn.functional.scaled_dot_product_attention
    try:
        torch.nn.functional.scaled_dot_product_attention = lambda *a, **k: called.append(1) or original(*a, **k)
        model(torch.randn(1, 6, 16, 16))
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    assert len(called) == 2


def test_out_indices_select_the_right_blocks(tiny_encoder):
    model = tiny_encoder(img_size=16, embed_dim=32, depth=4, fold="none")
    model.eval()
    x = torch.randn(1, 6, 16, 16)
    all_out = model(x)
    assert len(all_out) == 4
    model.out_indices = [1, 3]
    picked = model(x)
    torch.testing.assert_close(picked[0], all_out[1])
    torch.testing.assert_close(picked[1], all_out[3])
    model.out_indices = model._check_out_indices([3, -3])  # any order, negative allowed: block order out
    assert model.out_indices == [1, 3]
    with pytest.raises(ValueError, match="out of range for a 4-block encoder"):
        tiny_encoder(img_size=16, embed_dim=32, depth=4, out_indices=[4])
    with pytest.raises(ValueError, match="out_indices is empty"):
        tiny_encoder(img_size=16, embed_dim=32, depth=4, out_indices=[])


@pytest.mark.parametrize("fold", ["concat", "mean"])
def test_one_changed_location_moves_only_that_cell_of_the_folded_map(fold, tiny_encoder):
    """Layout proof at the embedding output (before attention mixes locations)."""
    model = tiny_encoder(patch_size=8)
    x = torch.randn(1, 6, 32, 32)
    y = x.clone()
    row, col = 1, 2
    y[:, 4, row * 8 + 3, col * 8 + 5] += 10.0  # one pixel of band 4 (second spectral group)
    neck = ReshapeTokensToImage([16], remove_cls_token=False)
    maps = []
    for image in (x, y):
        tokens, grid = model.embed(image)
        from terratorch_specmae.models import fold_spectral_groups

        maps.append(neck([fold_spectral_groups(tokens, grid.groups, fold)], image_size=(32, 32))[0])
    changed = (maps[0] - maps[1]).abs().sum(dim=(0, 1)) > 0
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[row, col] = True
    assert torch.equal(changed, expected)
    if fold == "concat":  # only the second group's channels move
        diff = (maps[0] - maps[1]).abs()[0, :, row, col]
        assert diff[:16].sum() == 0 and diff[16:].sum() > 0


def test_unfolded_tokens_with_fold_neck_equal_folded_output(tiny_encoder):
    folded = tiny_encoder(depth=2, fold="concat")
    raw = tiny_encoder(depth=2, fold="none")
    raw.load_state_dict(folded.state_dict())
    neck = NECK_REGISTRY.build("FoldSpectralGroups", [16, 16], groups=2)
    assert neck.process_channel_list([16, 16]) == folded.out_channels
    x = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        for a, b in zip(folded(x), neck(raw(x)), strict=True):
            torch.testing.assert_close(a, b)


def _factory_model(task, **extra):
    args = {
        "backbone": "s2mae_vit_tiny",
        "backbone_bands": "landsat7",
        "backbone_img_size": 64,
        **extra,
    }
    return EncoderDecoderFactory().build_model(task, **args)


def test_encoder_decoder_factory_segmentation_with_stock_prithvi_necks():
    model = _factory_model(
        "segmentation", necks=SEG_NECKS, decoder="UperNetDecoder", decoder_channels=64, num_classes=3
    )
    for size in (64, 60):  # 60 is padded by TerraTorch, cropped back
        out = model(torch.randn(2, 6, size, size)).output
        assert out.shape == (2, 3, size, size)


def test_unfolded_tokens_through_the_registered_neck_by_name():
    necks = [{"name": "FoldSpectralGroups", "groups": 2, "mode": "concat"}, *SEG_NECKS]
    model = _factory_model(
        "segmentation", backbone_fold="none", necks=necks, decoder="UperNetDecoder", decoder_channels=32, num_classes=3
    )
    assert model.encoder.out_channels[0] == 192
    assert model(torch.randn(2, 6, 64, 64)).output.shape == (2, 3, 64, 64)


@pytest.mark.parametrize("bands", ["landsat7", "sentinel2_l2a"])  # 2 and 4 spectral groups (4: a square count)
def test_unfolded_tokens_into_the_stock_reshape_neck_are_refused(bands):
    """fold: none tokens [B, G·h·w, D] reshaped as one map would put each group in its own region."""
    groups = {"landsat7": 2, "sentinel2_l2a": 4}[bands]
    with pytest.raises(ValueError, match=rf"backbone_fold: none gives cube tokens \[B, {groups}·h·w, D\].*"
                       rf"FoldSpectralGroups, groups: {groups}.*backbone_fold: concat"):
        _factory_model("segmentation", backbone_bands=bands, backbone_fold="none", necks=SEG_NECKS,
                       decoder="UperNetDecoder", decoder_channels=32, num_classes=3)
    # with the folding neck first it builds; one group (a 2D patch token per location) needs no folding
    necks = [{"name": "FoldSpectralGroups", "groups": groups, "mode": "mean"}, *SEG_NECKS]
    model = _factory_model("segmentation", backbone_bands=bands, backbone_fold="none", necks=necks,
                           decoder="UperNetDecoder", decoder_channels=32, num_classes=3)
    assert model.encoder.groups == groups
    model = _factory_model("segmentation", backbone="sigmae_vit_tiny", backbone_patch_size=16, backbone_fold="none",
                           necks=SEG_NECKS, decoder="UperNetDecoder", decoder_channels=32, num_classes=3)
    assert model.encoder.groups == 1


def test_encoder_decoder_factory_classification():
    model = _factory_model(
        "classification",
        necks=[{"name": "SelectIndices", "indices": [-1]}, {"name": "ReshapeTokensToImage", "remove_cls_token": False}],
        decoder="IdentityDecoder",
        num_classes=5,
    )
    assert model(torch.randn(3, 6, 64, 64)).output.shape == (3, 5)


def test_no_neck_path_gives_maps(tiny_encoder):
    model = tiny_encoder(depth=2, out_indices=[1])
    maps = model.prepare_features_for_image_model(model(torch.randn(1, 6, 32, 48)))
    assert maps[0].shape == (1, 32, 4, 6)


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda: torch.randn(1, 4, 32, 32), r"Expected 6 bands \['BLUE', .*got 4 channels"),
        (lambda: torch.randn(6, 32, 32), r"Expected an image tensor \[B, C, H, W\], got shape \(6, 32, 32\)"),
        (lambda: torch.randn(1, 6, 4, 32), "smaller than one 8×8 patch"),
        (lambda: torch.randn(1, 6, 2, 32, 32), "Got 2 dates"),
    ],
)
def test_bad_inputs_are_clear_errors(make_input, message, tiny_encoder):
    model = tiny_encoder()
    with pytest.raises(ValueError, match=message):
        model(make_input())


def test_nan_pixels_error_or_fill(tiny_encoder):
    x = torch.randn(1, 6, 32, 32)
    x[0, 2, 5, 5] = float("nan")
    strict = tiny_encoder()
    with pytest.raises(ValueError, match=r"Input has 1 invalid values \(1 NaN\) of 6144, in bands \{'RED': 1\}"):
        strict(x)
    lenient = tiny_encoder(nan_policy="fill")
    lenient.load_state_dict(strict.state_dict())
    filled = x.nan_to_num(0.0)
    torch.testing.assert_close(lenient(x)[0], strict(filled)[0])


def test_fixed_image_size_and_other_sizes(tiny_encoder):
    fixed = tiny_encoder(dynamic_img_size=False)
    with pytest.raises(ValueError, match="Expected images of 32×32 pixels, got 48×48"):
        fixed(torch.randn(1, 6, 48, 48))
    dynamic = tiny_encoder()
    assert dynamic(torch.randn(1, 6, 48, 40))[0].shape == (1, 30, 32)
    assert dynamic(torch.randn(1, 6, 30, 30))[0].shape == (1, 16, 32)  # padded to 32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fold": "sum"}, ValueError, "fold must be one of"),
        ({"nan_policy": "zero"}, ValueError, "nan_policy must be one of"),
        ({"num_frames": 3}, ValueError, "num_frames=3"),
        ({"pretrained": True}, ValueError, "No pretrained weights are registered for .s2mae_vit_tiny."),
        ({"bands": ["B02", "RED_EDGE_9"]}, ValueError, "Unknown band name 'RED_EDGE_9'"),
        ({"spectral_patch_size": 0}, ValueError, "must be >= 1"),
        ({"colour": "red"}, TypeError, "colour"),
    ],
)
def test_bad_build_arguments_are_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        BACKBONE_REGISTRY.build("s2mae_vit_tiny", img_size=16, **kwargs)


def test_unknown_variant_names_the_known_ones():
    with pytest.raises(ValueError, match="Unknown model 's2mae_vit_huge'; expected one of: s2mae_vit_tiny"):
        BACKBONE_REGISTRY.build("s2mae_vit_huge")


@pytest.mark.parametrize("size", list(VIT_SIZES))
def test_sigmae_backbones_have_2d_patch_tokens(size):
    from terratorch.registry import FULL_MODEL_REGISTRY

    name = f"sigmae_vit_{size}"
    assert name in BACKBONE_REGISTRY and f"{name}_mae" in FULL_MODEL_REGISTRY
    model = BACKBONE_REGISTRY.build(name, bands="landsat8", img_size=32, depth=1)
    assert model.patch_size == 16 and model.groups == 1 and model.embed_dim == VIT_SIZES[size]["embed_dim"]
    assert model.tokenizer.proj.kernel_size == (7, 16, 16)  # one token spans all 7 bands
    with torch.no_grad():
        out = model(torch.randn(2, 7, 32, 32))
    assert out[-1].shape == (2, 4, VIT_SIZES[size]["embed_dim"])
    assert model.out_channels == [VIT_SIZES[size]["embed_dim"]]  # concat of one group = D
    small_patches = BACKBONE_REGISTRY.build(name, bands="landsat8", img_size=32, patch_size=8, depth=1)
    assert small_patches.default_grid.cells == 16


def test_sigmae_backbone_in_a_segmentation_model():
    model = EncoderDecoderFactory().build_model(
        task="segmentation", backbone="sigmae_vit_tiny", backbone_bands="landsat7", backbone_img_size=32,
        backbone_patch_size=8, necks=SEG_NECKS, decoder="UperNetDecoder", num_classes=3,
    )
    with torch.no_grad():
        out = model(torch.randn(2, 6, 32, 32)).output
    assert out.shape == (2, 3, 32, 32)


def test_unknown_sigmae_variant_names_the_known_ones():
    with pytest.raises(ValueError, match="Unknown model 'sigmae_vit_huge'; expected one of: sigmae_vit_tiny"):
        BACKBONE_REGISTRY.build("sigmae_vit_huge")


def test_command_line_strings_are_read_as_yaml():
    """``--model.init_args.model_args.patch_size=8`` arrives as the string "8"; it must work like 8."""
    from terratorch.registry import FULL_MODEL_REGISTRY

    from terratorch_specmae.backbones import parse_command_line_values

    model = BACKBONE_REGISTRY.build("sigmae_vit_tiny", bands="landsat7", img_size="32", patch_size="8", depth="1",
                                    out_indices="[0]", ckpt_path="")
    assert model.patch_size == 8 and model.img_size == (32, 32) and model.depth == 1
    mae = FULL_MODEL_REGISTRY.build("s2mae_vit_tiny_mae", bands="landsat7", img_size=32, depth=1, mask_ratio="0.75",
                                    decode_fraction="0.5", masking="saliency", masking_options={"gamma_max": "0.5"})
    assert mae.masking.mask_ratio == 0.75 and mae.decode_fraction == 0.5 and mae.masking.curriculum.gamma_max == 0.5
    assert parse_command_line_values({"bands": "sentinel2", "ckpt_path": "123", "fold": "mean", "x": "null"}) == {
        "bands": "sentinel2", "ckpt_path": "123", "fold": "mean", "x": None}
