"""Pixel-centred patches of a raster, the input of SS-MAE and MRS pixel classification."""

from __future__ import annotations

import numpy as np


def pixel_patches(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """``[N, C, size, size]`` patches of ``image`` ``[C, H, W]`` centred on pixels ``(rows[i], cols[i])``.

    ``size`` must be odd (a centre pixel); the image is edge-padded, so pixels at the border get
    patches whose outside part repeats the nearest edge pixel.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"Patch size must be odd and positive (a centre pixel), got {size}.")
    if image.ndim != 3:
        raise ValueError(f"Expected an image [C, H, W], got shape {image.shape}.")
    rows, cols = np.asarray(rows), np.asarray(cols)
    height, width = image.shape[1:]
    if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= height or cols.max() >= width):
        raise ValueError(f"Pixel coordinates outside the {height}×{width} image.")
    half = size // 2
    padded = np.pad(image, ((0, 0), (half, half), (half, half)), mode="edge")
    offsets = np.arange(size)
    r = rows[:, None, None] + offsets[None, :, None]  # [N, size, 1] rows in the padded image
    c = cols[:, None, None] + offsets[None, None, :]
    return np.ascontiguousarray(padded[:, r, c].transpose(1, 0, 2, 3))
