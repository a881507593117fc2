"""Small drawing helpers shared by the callbacks and the example scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def stretch(band: np.ndarray | torch.Tensor, low: float = 2, high: float = 98) -> np.ndarray:
    """Percentile stretch to [0, 1] over finite values (a constant image becomes 0)."""
    arr = band.detach().float().cpu().numpy() if isinstance(band, torch.Tensor) else np.asarray(band, float)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return np.zeros_like(arr)
    lo, hi = np.percentile(finite, [low, high])
    return np.clip((arr - lo) / max(hi - lo, 1e-12), 0, 1)


def rgb_composite(image: torch.Tensor | np.ndarray, rgb: Sequence[int]) -> np.ndarray:
    """``[C, H, W]`` image → ``[H, W, 3]`` display composite of bands ``rgb``, each stretched."""
    return np.stack([stretch(image[i]) for i in rgb], axis=-1)


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def reconstruction_figure(
    image: torch.Tensor, reconstruction: torch.Tensor, mask: torch.Tensor, bands: Sequence[int], band_names=None
) -> plt.Figure:
    """Rows = samples; for each band: input | mask | reconstruction (masked pixels) over the input.

    ``image``/``reconstruction``/``mask`` are ``[B, C, H, W]``; input and reconstruction of a
    band share one stretch so they are comparable.
    """
    n = image.shape[0]
    cols = 3 * len(bands)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n), squeeze=False)
    for row in range(n):
        for j, b in enumerate(bands):
            x = image[row, b].float().cpu().numpy()
            finite = x[np.isfinite(x)]
            lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
            m = mask[row, b].float().cpu().numpy()
            pasted = np.where(m > 0, reconstruction[row, b].float().cpu().numpy(), x)
            panels = [(x, "gray", lo, hi), (m, "magma", 0, 1), (pasted, "gray", lo, hi)]
            name = band_names[b] if band_names else f"band {b}"
            titles = [f"{name}", "mask", "reconstruction"]
            for k, (data, cmap, vmin, vmax) in enumerate(panels):
                ax = axes[row, 3 * j + k]
                ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
                ax.set_axis_off()
                if row == 0:
                    ax.set_title(titles[k], fontsize=7)
    fig.suptitle(
        "per band: input | mask (light = hidden) | reconstruction of hidden pixels (visible ones as input)", fontsize=8
    )
    return fig


def class_colormap(num_classes: int, colors: Sequence[str] | None = None) -> matplotlib.colors.ListedColormap:
    """One colour per class: ``colors`` if given, else tab10/tab20 in order."""
    if colors is not None:
        if len(colors) < num_classes:
            raise ValueError(f"Got {len(colors)} class colours for {num_classes} classes.")
        return matplotlib.colors.ListedColormap(list(colors[:num_classes]))
    palette = plt.get_cmap("tab10" if num_classes <= 10 else "tab20").colors
    return matplotlib.colors.ListedColormap(palette[: max(num_classes, 2)])


def segmentation_figure(
    image: torch.Tensor,
    target: torch.Tensor | None,
    prediction: torch.Tensor,
    rgb: Sequence[int],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
) -> plt.Figure:
    """Rows = samples: RGB composite | reference labels | predicted labels, with a class legend."""
    n = image.shape[0]
    cols = 3 if target is not None else 2
    fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols, 2.2 * n), squeeze=False)
    cmap = class_colormap(num_classes, class_colors)
    for row in range(n):
        panels = [(rgb_composite(image[row], rgb), None, "image")]
        if target is not None:
            panels.append((target[row].cpu().numpy(), cmap, "reference"))
        panels.append((prediction[row].cpu().numpy(), cmap, "prediction"))
        for k, (data, cm, title) in enumerate(panels):
            ax = axes[row, k]
            ax.imshow(data, cmap=cm, vmin=-0.5 if cm else None, vmax=cmap.N - 0.5 if cm else None, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=8)
    names = class_names or [str(i) for i in range(num_classes)]
    handles = [matplotlib.patches.Patch(color=cmap(i), label=name) for i, name in enumerate(names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=7, frameon=False)
    return fig


def classification_figure(
    image: torch.Tensor, target: torch.Tensor | None, prediction: torch.Tensor, rgb: Sequence[int], class_names=None
) -> plt.Figure:
    """A grid of RGB composites titled with reference → predicted class."""
    n = image.shape[0]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.1 * rows), squeeze=False)
    name = (lambda i: class_names[i]) if class_names else str
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(rgb_composite(image[i], rgb))
        pred = name(int(prediction[i]))
        title = f"{name(int(target[i]))} → {pred}" if target is not None else pred
        ax.set_title(title, fontsize=7)
    return fig
