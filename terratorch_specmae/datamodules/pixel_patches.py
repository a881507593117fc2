"""Pixel-centred patches of a raster, the input of SS-MAE and MRS pixel classification.

A raster is edge-padded once (:func:`edge_pad`) and patches are cut from the padded array
(:func:`patches_from_padded`), so a dataset of many pixels pads the scene only once.
"""

from __future__ import annotations

import numpy as np


def check_patch_size(size: int) -> None:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"patch_size must be odd and positive (a centre pixel), got {size}.")


def edge_pad(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` ``[C, H, W]`` padded by ``size // 2`` on every side, repeating the edge pixels."""
    check_patch_size(size)
    if image.ndim != 3:
        raise ValueError(f"Expected an image [C, H, W], got shape {image.shape}.")
    half = size // 2
    return np.pad(image, ((0, 0), (half, half), (half, half)), mode="edge")


def check_pixels(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> None:
    """Raise unless every ``(rows[i], cols[i])`` lies in the image :func:`edge_pad` turned into ``padded``."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    height, width = padded.shape[1] - size + 1, padded.shape[2] - size + 1
    if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= height or cols.max() >= width):
        raise ValueError(f"Pixel coordinates outside the {height}×{width} image.")


def patches_from_padded(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """``[N, C, size, size]`` patches centred on pixels ``(rows[i], cols[i])`` of the image that
    :func:`edge_pad` turned into ``padded``; coordinates outside that image raise."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    check_pixels(padded, rows, cols, size)
    offsets = np.arange(size)
    r = rows[:, None, None] + offsets[None, :, None]  # [N, size, 1] rows in the padded image
    c = cols[:, None, None] + offsets[None, None, :]
    return np.ascontiguousarray(padded[:, r, c].transpose(1, 0, 2, 3))


def pixel_patches(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """``[N, C, size, size]`` patches of ``image`` ``[C, H, W]`` centred on pixels ``(rows[i], cols[i])``.

    ``size`` must be odd (a centre pixel); the image is edge-padded, so pixels at the border get
    patches whose outside part repeats the nearest edge pixel.
    """
    return patches_from_padded(edge_pad(image, size), rows, cols, size)
