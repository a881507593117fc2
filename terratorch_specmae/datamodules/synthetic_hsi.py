"""A generator of small, physically plausible hyperspectral + elevation scenes with labels.

No real hyperspectral scene (Houston 2018, Berlin) is reachable offline, so examples and tests
use scenes made here. They are *synthetic*: good for showing that a pipeline learns and for
testing, never for benchmarking accuracy against the papers.

How a scene is made (``make_scene``):

* **Classes** (Houston-like): water, grass, trees, bare soil, asphalt, roofs. Each has a
  smooth reference reflectance spectrum built from the physics it shows: water absorbs
  beyond 700 nm; vegetation has chlorophyll absorption (blue, red), the green peak, the red
  edge near 715 nm and a NIR plateau (higher for trees); soil rises slowly with wavelength;
  asphalt is dark and flat; roofs are bright and flat with a mild slope.
* **Layout**: each class's abundance is a spatially smooth random field; the label of a pixel
  is the class of largest abundance, and its spectrum mixes the classes with softmax weights
  of the abundances (sharp but not hard: mixed pixels at boundaries).
* **Variability**: per-pixel brightness (smooth field, ±15 %), a smooth per-pixel spectral
  tilt, and band-wise sensor noise (1 % of reflectance, larger at the spectrum's ends). Spectra
  stay smooth across neighbouring bands, so bands are strongly correlated — the redundancy MRS
  is about.
* **Auxiliary channel** ``DSM`` (metres): a smooth terrain plus class heights (trees 8–14 m,
  roofs 6–20 m per building-sized blob, water flattened to the lowest ground).
* **Labels**: a sparse reference (a share of pixels per class, like field surveys) split into
  train and test by vertical strips, so no train pixel borders a test pixel across a strip.

``write_scene`` stores GeoTIFFs in UTM zone 15N at 1 m (Houston's grid): ``hsi.tif``
(float32 reflectance, bands named by wavelength), ``aux.tif`` (DSM), ``labels.tif`` (uint8,
0 = unlabelled, 1…K classes) and ``split.tif`` (uint8, 0 none, 1 train, 2 test).

    specmae synthetic-hsi examples/data/hsi_synthetic
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from terratorch_specmae.atomic import atomic_path, atomic_write_text

CLASSES = ("water", "grass", "trees", "bare_soil", "asphalt", "roofs")


def wavelengths(num_bands: int = 48, start: float = 380.0, stop: float = 1050.0) -> np.ndarray:
    """Band centres in nm, evenly spaced (Houston 2018's CASI: 48 bands, 380–1050 nm)."""
    return np.linspace(start, stop, num_bands)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gauss(wl: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((wl - centre) / width) ** 2)


def reference_spectra(wl: np.ndarray) -> np.ndarray:
    """``[K, C]`` reflectance (0–1) of the classes in :data:`CLASSES` at wavelengths ``wl``."""
    red_edge = _sigmoid((wl - 715.0) / 18.0)
    green_peak = _gauss(wl, 550.0, 35.0)
    water = 0.06 * np.exp(-((wl - 400.0) / 250.0)) * (1 - _sigmoid((wl - 700.0) / 30.0)) + 0.005
    grass = 0.04 + 0.06 * green_peak + 0.38 * red_edge
    trees = 0.03 + 0.04 * green_peak + 0.48 * red_edge - 0.03 * _gauss(wl, 970.0, 25.0)  # water absorption
    soil = 0.10 + 0.20 * (wl - wl.min()) / (wl.max() - wl.min()) + 0.02 * _gauss(wl, 900.0, 80.0)
    asphalt = 0.07 + 0.02 * (wl - wl.min()) / (wl.max() - wl.min())
    roofs = 0.30 + 0.05 * (wl - wl.min()) / (wl.max() - wl.min()) - 0.03 * _gauss(wl, 480.0, 40.0)
    return np.stack([water, grass, trees, soil, asphalt, roofs]).astype(np.float32)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """White noise low-pass filtered with a Gaussian of ``scale`` pixels (via FFT), unit std."""
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[-2])[:, None]
    fx = np.fft.fftfreq(shape[-1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * scale) ** 2 * (fx**2 + fy**2))
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) * kernel))
    field -= field.mean(axis=(-2, -1), keepdims=True)
    return field / field.std(axis=(-2, -1), keepdims=True)


@dataclass
class Scene:
    hsi: np.ndarray  # [C, H, W] float32 reflectance
    dsm: np.ndarray  # [H, W] float32 metres
    classes: np.ndarray  # [H, W] uint8, 0 … K−1 (complete class map)
    labels: np.ndarray  # [H, W] uint8, 0 unlabelled, 1 … K
    split: np.ndarray  # [H, W] uint8, 0 none, 1 train, 2 test
    wavelengths: np.ndarray  # [C] nm

    @property
    def band_names(self) -> list[str]:
        return [f"{w:.1f}nm" for w in self.wavelengths]


def make_scene(
    size: int = 96,
    num_bands: int = 48,
    seed: int = 0,
    labelled_fraction: float = 0.08,
    strips: int = 4,
    noise: float = 0.01,
) -> Scene:
    """A ``size × size`` scene (see the module docstring); deterministic for a ``seed``."""
    if size < 16 or num_bands < 4:
        raise ValueError(f"Expected size >= 16 and num_bands >= 4, got size={size}, num_bands={num_bands}.")
    rng = np.random.default_rng(seed)
    wl = wavelengths(num_bands)
    spectra = reference_spectra(wl)  # [K, C]
    k = len(CLASSES)
    abundance = smooth_field(rng, (k, size, size), scale=size / 10)
    abundance[0] += 0.4 * smooth_field(rng, (size, size), scale=size / 6) - 0.3  # water: fewer, larger bodies
    classes = abundance.argmax(axis=0).astype(np.uint8)
    weights = np.exp(10.0 * abundance)
    weights /= weights.sum(axis=0, keepdims=True)  # [K, H, W], sharp mixtures
    hsi = np.einsum("kc,khw->chw", spectra, weights)
    brightness = 1.0 + 0.15 * np.tanh(smooth_field(rng, (size, size), scale=size / 8))
    tilt = 0.04 * smooth_field(rng, (size, size), scale=size / 12)
    ramp = (wl - wl.mean()) / (wl.max() - wl.min())
    hsi = hsi * brightness + tilt[None] * ramp[:, None, None] * hsi
    edge = 1.0 + 2.0 * np.abs(ramp)[:, None, None]  # noisier detectors at the spectrum's ends
    hsi = hsi + noise * edge * hsi * rng.standard_normal(hsi.shape)
    hsi = np.clip(hsi, 0.0, 1.0).astype(np.float32)

    ground = 10.0 + 3.0 * smooth_field(rng, (size, size), scale=size / 4)
    heights = np.zeros((size, size))
    heights[classes == 2] = 11.0 + 3.0 * np.tanh(smooth_field(rng, (size, size), scale=3))[classes == 2]
    roofs = 13.0 + 7.0 * np.tanh(smooth_field(rng, (size, size), scale=size / 16))
    heights[classes == 5] = roofs[classes == 5]
    dsm = ground + heights + 0.2 * rng.standard_normal((size, size))
    dsm[classes == 0] = ground.min()
    dsm = dsm.astype(np.float32)

    labels = np.zeros((size, size), np.uint8)
    pick = rng.random((size, size)) < labelled_fraction
    labels[pick] = classes[pick] + 1
    strip = (np.arange(size)[None, :] * strips // size).repeat(size, axis=0)
    split = np.where(labels > 0, np.where(strip % 2 == 0, 1, 2), 0).astype(np.uint8)
    return Scene(hsi=hsi, dsm=dsm, classes=classes, labels=labels, split=split, wavelengths=wl)


def write_scene(scene: Scene, out_dir: str | Path) -> dict[str, Path]:
    """Write ``hsi.tif``, ``aux.tif``, ``labels.tif``, ``split.tif`` (UTM 15N, 1 m) and ``scene.json``."""
    import rasterio
    from rasterio.transform import Affine

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    height, width = scene.labels.shape
    profile = {
        "driver": "GTiff", "height": height, "width": width, "crs": "EPSG:32615",
        "transform": Affine(1.0, 0.0, 271_000.0, 0.0, -1.0, 3_290_000.0), "compress": "deflate",
    }
    layers = {
        "hsi": (scene.hsi, scene.band_names),
        "aux": (scene.dsm[None], ["DSM"]),
        "labels": (scene.labels[None], ["label"]),
        "split": (scene.split[None], ["split"]),
    }
    paths = {}
    for name, (data, descriptions) in layers.items():
        paths[name] = out / f"{name}.tif"
        predictor = 3 if data.dtype == np.float32 else 2  # floating-point / horizontal differencing
        with atomic_path(paths[name]) as tmp, rasterio.open(
            tmp, "w", count=data.shape[0], dtype=data.dtype, predictor=predictor, **profile
        ) as dst:
            dst.write(data)
            dst.descriptions = tuple(descriptions)
    counts = {c: int((scene.labels == i + 1).sum()) for i, c in enumerate(CLASSES)}
    meta = {
        "classes": list(CLASSES), "bands": scene.band_names, "aux_bands": ["DSM"],
        "labelled_pixels": counts, "train_pixels": int((scene.split == 1).sum()),
        "test_pixels": int((scene.split == 2).sum()),
    }
    atomic_write_text(out / "scene.json", json.dumps(meta, indent=2))
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the command that writes a scene (``specmae synthetic-hsi``)."""
    parser.add_argument("out_dir", type=Path, help="the folder to write hsi.tif, aux.tif, labels.tif, split.tif, scene.json")
    parser.add_argument("--size", type=int, default=96, help="height and width in pixels, >= 16 (default: 96)")
    parser.add_argument("--bands", type=int, default=48, help="spectral bands, 380-1050 nm, >= 4 (default: 48)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; a seed gives the same scene (default: 0)")


def write(args: argparse.Namespace) -> None:
    """Make the scene the parsed arguments describe and write it."""
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise NotADirectoryError(f"The output path {str(args.out_dir)!r} is a file; expected a folder for the scene.")
    paths = write_scene(make_scene(args.size, args.bands, args.seed), args.out_dir)
    print("wrote", ", ".join(str(p) for p in paths.values()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    write(parser.parse_args(argv))


if __name__ == "__main__":
    main()
