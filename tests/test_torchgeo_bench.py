"""torchgeo-bench: our encoders as a ``BenchModel`` (terratorch_specmae/integrations/torchgeo_bench.py).

The band naming runs anywhere; the model needs torchgeo-bench (Python >= 3.12, the bench extra)
and is skipped without it; the slow test runs torchgeo-bench's own Hydra runner with the shipped
model YAML on fake GEO-Bench-2 data.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from cli_runner import ROOT, restored_global_state

from terratorch_specmae.integrations import torchgeo_bench as adapter

NEEDS_TGB = "torchgeo-bench is not installed (it needs Python >= 3.12; pip install 'terratorch-specmae[bench]')"
TINY = {"embed_dim": 16, "depth": 4, "num_heads": 2}


def spec(name, sensor="s2", source_name="", wavelength_um=None):
    return SimpleNamespace(name=name, sensor=sensor, source_name=source_name, wavelength_um=wavelength_um)


@pytest.mark.parametrize(
    ("band", "expected"),
    [
        (spec("b02", source_name="B02", wavelength_um=0.49), "B02"),
        (spec("b8a", source_name="B8A", wavelength_um=0.865), "B8A"),
        (spec("b08"), "B08"),
        (spec("b8a", sensor="hls"), "B8A"),
        (spec("red", sensor="s2"), "B04"),  # a common name from a Sentinel-2 data set: its S2 band
        (spec("red", sensor="landsat", wavelength_um=0.655), "RED"),  # from another sensor: the generic band
        (spec("nir", sensor="aerial"), "NIR_BROAD"),
        (spec("swir1", sensor="landsat"), "SWIR_1"),
        (spec("vv", sensor="s1"), "VV"),
        (spec("vh", sensor="sar", source_name="VH"), "VH"),
        (spec("b04", sensor="landsat", wavelength_um=0.655), "655nm"),  # Landsat's B4 is not Sentinel-2's B04
        (spec("pan", sensor="planet", wavelength_um=0.6525), "652.5nm"),
    ],
)
def test_bandspecs_get_our_band_names(band, expected):
    assert adapter.specmae_band_name(band) == expected


def test_bands_that_cannot_be_named_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"No band name for torchgeo-bench band 'dem'.*no wavelength"):
        adapter.specmae_band_name(spec("dem", sensor="elevation"))
    with pytest.raises(ValueError, match=r"'red' \(sensor 'landsat'\) is at 865 nm.*RED, is at 665 nm"):
        adapter.specmae_band_name(spec("red", sensor="landsat", wavelength_um=0.865))
    with pytest.raises(ValueError, match=r"duplicates \['B04'\]"):
        adapter.specmae_band_names([spec("b04"), spec("red")])


def test_the_adapter_imports_without_torchgeo_bench_and_says_what_is_missing(monkeypatch):
    monkeypatch.delitem(adapter.__dict__, "SpecMAEBench", raising=False)  # not built yet
    for module in ("torchgeo_bench", "torchgeo_bench.models", "torchgeo_bench.models.interface"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs torchgeo-bench \(Python >= 3.12\).*\[bench\]"):
        adapter.SpecMAEBench  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Other'"):
        adapter.Other  # noqa: B018


@pytest.fixture
def bench():
    pytest.importorskip("torchgeo_bench", reason=NEEDS_TGB)
    from torchgeo_bench.datasets.benv2 import BENV2
    from torchgeo_bench.datasets.burn_scars import BurnScars

    return SimpleNamespace(model=adapter.SpecMAEBench, benv2=BENV2, burn_scars=BurnScars)


def test_torchgeo_bench_datasets_bands_map_onto_ours(bench):
    assert adapter.specmae_band_names(bench.benv2.bands) == (
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "VV", "VH")  # fmt: skip
    assert adapter.specmae_band_names(bench.burn_scars.bands) == ("B02", "B03", "B04", "B8A", "B11", "B12")


def test_bench_model_gives_pooled_features_and_maps_for_segmentation_probes(bench):
    from torchgeo_bench.models import BenchModel
    from torchgeo_bench.segmentation_probe import SegmentationProbe

    model = bench.model(bench.burn_scars.bands, backbone="s2mae_vit_tiny", target_size=32, out_indices=[1, 3],
                        backbone_kwargs=TINY)
    assert isinstance(model, BenchModel) and model.backbone.bands == ("B02", "B03", "B04", "B8A", "B11", "B12")
    assert not any(p.requires_grad for p in model.backbone.parameters()) and not model.backbone.training
    images = torch.rand(3, 6, 48, 48) * 0.3  # reflectance; resized to 32 inside
    features = model.forward_patch_features(images)
    assert features.shape == (3, 2 * 16)  # 6 bands = 2 spectral groups of 16 channels (fold: concat)
    maps = model.spatial_features(model.normalize_inputs(images))
    assert [m.shape for m in maps] == [(3, 32, 4, 4)] * 2
    torch.testing.assert_close(features, maps[-1].mean(dim=(-2, -1)))
    both = bench.model(bench.burn_scars.bands, backbone="s2mae_vit_tiny", target_size=32, pool="both",
                       backbone_kwargs={**TINY, "fold": "mean"})
    assert both(images).shape == (3, 2 * 16)  # fold mean: 16 channels, mean and max
    with pytest.raises(ValueError, match="pool must be one of"):
        bench.model(bench.burn_scars.bands, backbone="s2mae_vit_tiny", target_size=32, pool="cls", backbone_kwargs=TINY)

    probe = SegmentationProbe(model, ["feature_maps.3", "feature_maps.1"], num_classes=3, head_type="fpn")
    assert probe.channels_list == [32, 32]
    assert probe(torch.rand(2, 6, 32, 32)).shape == (2, 3, 32, 32)


def test_sigmae_and_sar_bands_through_the_bench_model(bench):
    model = bench.model(bench.benv2.bands, backbone="sigmae_vit_tiny", target_size=32, backbone_kwargs=TINY)
    assert model.backbone.bands[-2:] == ("VV", "VH")
    assert model(torch.rand(2, 14, 32, 32) * 1000).shape == (2, 16)  # one token per location over all 14 bands


@pytest.mark.slow
def test_torchgeo_bench_runner_with_the_shipped_model_yaml(tmp_path, monkeypatch):
    """``torchgeo-bench run`` (its Hydra main, in this process) with configs/benchmarks/torchgeo_bench/model/
    on fake GEO-Bench-2 data: kNN and linear probe on BigEarthNet v2, the segmentation probe on burn scars."""
    pytest.importorskip("torchgeo_bench", reason=NEEDS_TGB)
    import pandas as pd
    import torchgeo_bench.datasets.geobench_v2 as v2
    from data.geobench.data import make_geobench
    from torchgeo_bench.main import main

    monkeypatch.setattr(v2, "V2_ROOT", make_geobench(tmp_path / "data"))
    monkeypatch.setenv("GEOBENCH_V2_NO_DOWNLOAD", "1")
    out = tmp_path / "results.csv"
    args = [
        f"hydra.searchpath=[file://{ROOT}/configs/benchmarks/torchgeo_bench]", "model=specmae_s2mae_vit_base",
        "model.backbone=s2mae_vit_tiny", "model.target_size=32", "model.out_indices=[1,3]",
        *(f"+model.backbone_kwargs.{k}={v}" for k, v in TINY.items()),
        "model.eval.segmentation.layers=[feature_maps.3,feature_maps.1]", "device=cpu",
        "dataset.names=[benv2,burn_scars]", "dataset.bands=all", "dataset.image_size=32", "dataset.batch_size=4",
        "dataset.num_workers=0", "eval.bootstrap=5", "eval.c_range=[-1,1,2]", "eval.segmentation.epochs=1",
        f"output={out}",
    ]
    started = time.perf_counter()
    with restored_global_state():
        os.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["torchgeo-bench", *args])
        main()
    print(f"torchgeo-bench run: {time.perf_counter() - started:.1f} s")
    results = pd.read_csv(out)
    assert sorted(zip(results["dataset"], results["method"])) == [("benv2", "knn5"), ("benv2", "linear"), ("burn_scars", "seg-fpn")]
    assert (results["model"] == "terratorch_specmae.integrations.torchgeo_bench.SpecMAEBench").all()
    assert results["metric_value"].between(0, 1).all()
    benv2 = results[results["dataset"] == "benv2"]
    assert (benv2["feature_dim"] == 5 * 16).all()  # 14 bands → 5 groups of 3 (the last padded), fold: concat
    assert (results["n_train"] == 4).all() and (results["n_test"] == 2).all()
    assert Path(tmp_path / "results.csv").stat().st_size > 0
