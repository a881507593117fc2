"""Our encoders in torchgeo-bench: ``SpecMAEBench``, a ``torchgeo_bench.models.BenchModel``.

torchgeo-bench builds a model per dataset as ``SpecMAEBench(bands=[BandSpec, …], **yaml)`` and
calls it on ``(B, C, H, W)`` batches of raw values (``BenchModel`` normalises them first, by
default with the dataset's per-band mean / std). This adapter

* names each ``BandSpec`` with one of our band names (:func:`specmae_band_name`): Sentinel-2 and
  HLS bands by their code (``b8a`` → ``B8A``), other optical bands by their common name
  (``red`` → ``RED``, ``nir`` → ``NIR_BROAD``), SAR polarisations as ``VV`` …, and anything
  else with a wavelength as a wavelength name (``0.6525`` µm → ``"652.5nm"``); a name whose
  wavelength disagrees with the ``BandSpec``'s by more than 60 nm is refused;
* builds the registered backbone through TerraTorch's ``BACKBONE_REGISTRY`` with those bands and
  ``img_size=target_size`` (``ckpt_path`` / ``pretrained`` load weights as in any config, fitted
  to the dataset's bands), frozen and in eval mode, as torchgeo-bench's TerraTorch wrappers do;
* resizes inputs to ``target_size`` and returns the mean (``pool: mean``) or mean and max
  (``pool: both``) over the last output's feature map, ``(B, C)``;
* passes every output block's ``[B, C, h, w]`` map through ``feature_maps.<block>``, identity
  modules that torchgeo-bench's segmentation probe hooks
  (``eval.segmentation.layers: ["feature_maps.11", "feature_maps.7", …]``, deepest first).

torchgeo-bench needs Python >= 3.12. This module imports without it (the band naming works
anywhere); ``SpecMAEBench`` is built on first access, which imports torchgeo-bench. Model YAMLs
for its Hydra runner: ``configs/benchmarks/torchgeo_bench/model/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from terratorch_specmae.bands import band_info, check_unique_bands

#: BandSpec sensors whose band codes are Sentinel-2's (HLS uses Sentinel-2's codes too)
S2_SENSORS = frozenset({"s2", "sentinel2", "sentinel-2", "sentinel_2", "hls", "s2l1c", "s2l2a"})
#: common names (torchgeo-bench's canonical short names and usual spellings) → (our generic name, Sentinel-2 code)
COMMON_NAMES: dict[str, tuple[str, str]] = {
    "coastal": ("COASTAL_AEROSOL", "B01"), "coastal_aerosol": ("COASTAL_AEROSOL", "B01"),
    "blue": ("BLUE", "B02"), "green": ("GREEN", "B03"), "red": ("RED", "B04"),
    "rededge1": ("RED_EDGE_1", "B05"), "red_edge_1": ("RED_EDGE_1", "B05"),
    "rededge2": ("RED_EDGE_2", "B06"), "red_edge_2": ("RED_EDGE_2", "B06"),
    "rededge3": ("RED_EDGE_3", "B07"), "red_edge_3": ("RED_EDGE_3", "B07"),
    "nir": ("NIR_BROAD", "B08"), "nir_broad": ("NIR_BROAD", "B08"),
    "nir_narrow": ("NIR_NARROW", "B8A"), "nir08": ("NIR_NARROW", "B8A"),
    "watervapor": ("WATER_VAPOR", "B09"), "water_vapor": ("WATER_VAPOR", "B09"), "water_vapour": ("WATER_VAPOR", "B09"),
    "cirrus": ("CIRRUS", "B10"),
    "swir1": ("SWIR_1", "B11"), "swir_1": ("SWIR_1", "B11"), "swir16": ("SWIR_1", "B11"),
    "swir2": ("SWIR_2", "B12"), "swir_2": ("SWIR_2", "B12"), "swir22": ("SWIR_2", "B12"),
}  # fmt: skip
SAR_NAMES = {"vv": "VV", "vh": "VH", "hh": "HH", "hv": "HV"}
_S2_CODE = re.compile(r"^b?0?(1[0-2]|[1-9]|8a)$")
#: largest difference (nm) between a BandSpec's wavelength and the wavelength of the name we give it
WAVELENGTH_TOLERANCE_NM = 60.0
POOL_MODES = ("mean", "both")


def _s2_code(key: str) -> str | None:
    match = _S2_CODE.match(key)
    if not match:
        return None
    code = match.group(1).upper()
    return "B8A" if code == "8A" else f"B{int(code):02d}"


def specmae_band_name(spec: Any) -> str:
    """Our band name for a torchgeo-bench ``BandSpec`` (anything with ``sensor``, ``name``,
    ``source_name`` and ``wavelength_um``); ``ValueError`` when none fits."""
    sensor = str(getattr(spec, "sensor", "")).strip().lower()
    keys = [str(k).strip().lower().replace(" ", "_") for k in (spec.name, getattr(spec, "source_name", "")) if k]
    wavelength_um = getattr(spec, "wavelength_um", None)
    name = None
    for key in keys:
        if key in SAR_NAMES:
            name = SAR_NAMES[key]
        elif sensor in S2_SENSORS and _s2_code(key):
            name = _s2_code(key)
        elif key in COMMON_NAMES:
            generic, s2 = COMMON_NAMES[key]
            name = s2 if sensor in S2_SENSORS else generic
        if name:
            break
    if name is None and wavelength_um is not None:
        name = f"{float(wavelength_um) * 1000:g}nm"
    if name is None:
        raise ValueError(
            f"No band name for torchgeo-bench band {spec.name!r} (sensor {sensor!r}, source name "
            f"{getattr(spec, 'source_name', None)!r}, no wavelength): expected a Sentinel-2 / HLS code (sensor "
            f"{sorted(S2_SENSORS)}), a common name ({', '.join(sorted(COMMON_NAMES))}), a SAR polarisation "
            f"({', '.join(SAR_NAMES)}) or a wavelength."
        )
    ours = band_info(name).wavelength_nm
    if wavelength_um is not None and not math.isnan(ours) and abs(ours - 1000 * float(wavelength_um)) > WAVELENGTH_TOLERANCE_NM:
        raise ValueError(
            f"torchgeo-bench band {spec.name!r} (sensor {sensor!r}) is at {1000 * float(wavelength_um):g} nm, but the "
            f"band its name maps to, {name}, is at {ours:g} nm (more than {WAVELENGTH_TOLERANCE_NM:g} nm apart)."
        )
    return name


def specmae_band_names(specs: Sequence[Any]) -> tuple[str, ...]:
    """:func:`specmae_band_name` of each ``BandSpec``, checked to be distinct."""
    names = tuple(specmae_band_name(spec) for spec in specs)
    check_unique_bands(names, "Band names given to torchgeo-bench's bands")
    return names


def _bench_model_class() -> type:
    try:
        from torchgeo_bench.models.interface import BenchModel
    except ImportError as error:
        raise ImportError(
            "SpecMAEBench needs torchgeo-bench (Python >= 3.12): pip install 'terratorch-specmae[bench]'."
        ) from error
    from terratorch.registry import BACKBONE_REGISTRY

    import terratorch_specmae.backbones  # noqa: F401  (registers the s2mae_ / sigmae_ backbones)

    class SpecMAEBench(BenchModel):
        """A registered S2MAE / SIGMAE encoder as a frozen torchgeo-bench ``BenchModel``.

        Args:
            bands: the dataset's ``BandSpec`` list (torchgeo-bench passes it).
            backbone: a registered backbone name (``s2mae_vit_base``, ``sigmae_vit_tiny`` …).
            ckpt_path: weights to load (a checkpoint, a folder or an ``hf://`` reference), fitted to
                the dataset's bands; ``pretrained``: the variant's registered weights.
            target_size: the encoder's image size; inputs are resized to it (bilinear).
            out_indices: blocks whose outputs are kept (default: every block); the last one is pooled.
            pool: ``"mean"`` (``C`` features) or ``"both"`` (mean and max, ``2C``).
            backbone_kwargs: further builder options (``fold``, ``pretrained_bands``, sizes …).
            normalization: torchgeo-bench's input normalisation strategy.
        """

        def __init__(
            self,
            bands: list,
            *,
            backbone: str = "s2mae_vit_base",
            ckpt_path: str | None = None,
            pretrained: bool = False,
            target_size: int = 128,
            out_indices: Sequence[int] | None = None,
            pool: str = "mean",
            backbone_kwargs: dict | None = None,
            normalization: str = "bandspec_zscore",
            **kwargs: Any,
        ) -> None:
            super().__init__(bands=bands, normalization=normalization, **kwargs)
            if pool not in POOL_MODES:
                raise ValueError(f"pool must be one of {POOL_MODES}, got {pool!r} (our encoders have no CLS token).")
            self.band_names = specmae_band_names(self.bands)
            self.target_size, self.pool = int(target_size), pool
            options = dict(backbone_kwargs or {})
            if out_indices is not None:
                options["out_indices"] = list(out_indices)
            self.backbone = BACKBONE_REGISTRY.build(
                backbone, bands=list(self.band_names), img_size=self.target_size, pretrained=pretrained,
                ckpt_path=ckpt_path, **options,
            )
            self.backbone.eval()
            for parameter in self.backbone.parameters():
                parameter.requires_grad_(False)
            self.feature_maps = nn.ModuleDict({str(i): nn.Identity() for i in self.backbone.out_indices})

        def spatial_features(self, images: torch.Tensor) -> list[torch.Tensor]:
            """Normalised ``(B, C, H, W)`` → one ``[B, C', h, w]`` map per output block (through ``feature_maps``)."""
            if images.shape[-2:] != (self.target_size, self.target_size):
                images = F.interpolate(images, size=(self.target_size, self.target_size), mode="bilinear",
                                       align_corners=False)
            maps = self.backbone.prepare_features_for_image_model(self.backbone(images))
            return [self.feature_maps[str(i)](m) for i, m in zip(self.backbone.out_indices, maps, strict=True)]

        @torch.no_grad()
        def _forward_patch_features(self, images: torch.Tensor) -> torch.Tensor:
            last = self.spatial_features(images)[-1]
            mean = last.mean(dim=(-2, -1))
            return torch.cat([mean, last.amax(dim=(-2, -1))], dim=1) if self.pool == "both" else mean

    SpecMAEBench.__module__, SpecMAEBench.__qualname__ = __name__, "SpecMAEBench"
    return SpecMAEBench


def __getattr__(name: str):
    if name == "SpecMAEBench":  # built on first access: importing torchgeo-bench is this class's business only
        cls = globals()["SpecMAEBench"] = _bench_model_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
