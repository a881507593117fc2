"""Variants as data: one size table, one literal builder per registered name."""

from __future__ import annotations

import inspect

import pytest
from terratorch.registry import BACKBONE_REGISTRY, FULL_MODEL_REGISTRY

from terratorch_specmae import backbones
from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.variants import FAMILIES, SSMAE_SIZES, VIT_SIZES, heads_for_width, size_of, variant_name

EXPECTED = sorted(
    [variant_name(f, s) for f in FAMILIES for s in VIT_SIZES] + [variant_name("ssmae", s) for s in SSMAE_SIZES]
)


def test_registered_names_are_the_table_and_each_is_a_literal_function_of_backbones():
    for registry, mae in ((BACKBONE_REGISTRY, False), (FULL_MODEL_REGISTRY, True)):
        names = sorted(n for family in (*FAMILIES, "ssmae") for n in (f"{family}_{k}" for k in registry[family]))
        assert names == sorted(f"{n}_mae" if mae else n for n in EXPECTED)
        for name in names:
            family, short = name.split("_", 1)
            builder = registry[family][short]
            assert builder.__name__ == name and getattr(backbones, name) is builder  # `def <name>` in backbones.py
            assert f"def {name}(" in inspect.getsource(backbones)


@pytest.mark.parametrize("size", list(VIT_SIZES))
def test_a_variant_is_built_with_the_tables_size(size):
    model = BACKBONE_REGISTRY.build(variant_name("s2mae", size), bands="landsat7", img_size=16)
    spec = VIT_SIZES[size]
    assert (model.embed_dim, model.depth, model.blocks[0].attn.num_heads) == (spec["embed_dim"], spec["depth"], spec["num_heads"])
    assert model.card_variant() == variant_name("s2mae", size)  # the model card names it from the same table
    assert size_of(spec["embed_dim"], spec["depth"]) == size and heads_for_width(spec["embed_dim"]) == spec["num_heads"]


def test_unknown_sizes_and_names():
    assert size_of(200, 12) is None and heads_for_width(200) is None
    with pytest.raises(ValueError, match=r"Unknown model 's2mae_vit_huge'; expected one of: s2mae_vit_tiny, "):
        BACKBONE_REGISTRY.build("s2mae_vit_huge")
    with pytest.raises(ValueError, match="A s2mae builder's name starts with 's2mae_'"):
        backbones.BACKBONES["s2mae"].register(lambda: None)


def test_mae_options_are_read_from_the_mae_signature():
    assert set(backbones.MAE_ARGS) == set(inspect.signature(SpectralMAE).parameters) - {"encoder"}
    assert {"masking", "mask_ratio", "decoder_embed_dim", "decoder_pos_embed"} <= set(backbones.MAE_ARGS)
