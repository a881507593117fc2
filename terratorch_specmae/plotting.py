"""Small drawing helpers shared by the callbacks and the example scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.patches
import numpy as np
import torch
from matplotlib.figure import Figure  # figures outside pyplot: no backend chosen, no global state touched

from terratorch_specmae.atomic import atomic_path


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


def save_figure(fig: Figure, path: str | Path, format: str | None = None) -> Path:
    """Save ``fig`` at ``path`` (``format``, else from its suffix, PNG without one) atomically, and close it.

    The figures drawn here are plain ``matplotlib.figure.Figure`` objects: saving renders them with
    the format's own canvas (Agg for PNG) whatever the user's backend, so a notebook's backend is
    never switched. A figure of pyplot's is closed there."""
    path = Path(path)
    fmt = format or path.suffix[1:].lower() or matplotlib.rcParams["savefig.format"]  # a temporary's is .tmp: name it
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight")
    finally:
        if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: drop it from pyplot's list
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


def reconstruction_figure(
    image: torch.Tensor, reconstruction: torch.Tensor, mask: torch.Tensor, bands: Sequence[int], band_names=None
) -> Figure:
    """Rows = samples; for each band: input | mask | reconstruction (masked pixels) over the input.

    ``image``/``reconstruction``/``mask`` are ``[B, C, H, W]``; input and reconstruction of a
    band share one stretch so they are comparable.
    """
    n = image.shape[0]
    cols = 3 * len(bands)
    fig = Figure(figsize=(1.6 * cols, 1.6 * n))
    axes = fig.subplots(n, cols, squeeze=False)
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
    palette = matplotlib.colormaps["tab10" if num_classes <= 10 else "tab20"].colors
    return matplotlib.colors.ListedColormap(palette[: max(num_classes, 2)])


def segmentation_figure(
    image: torch.Tensor,
    target: torch.Tensor | None,
    prediction: torch.Tensor,
    rgb: Sequence[int],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
) -> Figure:
    """Rows = samples: RGB composite | reference labels | predicted labels, with a class legend.

    A multi-temporal ``image`` ``[B, C, T, H, W]`` (change detection) gets one composite per date.
    """
    n = image.shape[0]
    dates = [image[:, :, t] for t in range(image.shape[2])] if image.ndim == 5 else [image]
    cols = len(dates) + (2 if target is not None else 1)
    fig = Figure(figsize=(2.2 * cols, 2.2 * n))
    axes = fig.subplots(n, cols, squeeze=False)
    cmap = class_colormap(num_classes, class_colors)
    for row in range(n):
        panels = [
            (rgb_composite(d[row], rgb), None, "image" if len(dates) == 1 else f"date {t + 1}")
            for t, d in enumerate(dates)
        ]
        if target is not None:
            panels.append((target[row].cpu().numpy(), cmap, "reference"))
        panels.append((prediction[row].cpu().numpy(), cmap, "prediction"))
        for k, (data, cm, title) in enumerate(panels):
            ax = axes[row, k]
            ax.imshow(data, cmap=cm, vmin=-0.5 if cm else None, vmax=cmap.N - 0.5 if cm else None, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=8)
    add_class_legend(fig, cmap, class_names or [str(i) for i in range(num_classes)], ncol=5)
    return fig


def add_class_legend(fig: Figure, cmap, names: Sequence[str], ncol: int) -> None:
    """A legend of class colours under the figure."""
    handles = [matplotlib.patches.Patch(color=cmap(i), label=name) for i, name in enumerate(names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), fontsize=7, frameon=False)


def class_map_figure(classes: np.ndarray, nodata: int, class_names: Sequence[str] | None = None) -> Figure:
    """A scene's class map ``[H, W]`` (``nodata`` left blank) with a class legend."""
    predicted = classes[classes != nodata]
    num_classes = max(int(predicted.max()) + 1 if predicted.size else 1, len(class_names or ()))
    cmap = class_colormap(num_classes)
    height, width = classes.shape
    scale = 5.0 / max(height, width)  # the longer side 5 in, plus a strip for the legend
    fig = Figure(figsize=(max(width * scale, 3.0), height * scale + 0.5))
    ax = fig.add_axes((0.0, 0.5 / (height * scale + 0.5), 1.0, height * scale / (height * scale + 0.5)))
    ax.imshow(np.ma.masked_equal(classes, nodata), cmap=cmap, vmin=-0.5, vmax=num_classes - 0.5, interpolation="nearest")
    ax.set_axis_off()
    add_class_legend(fig, cmap, class_names or [str(i) for i in range(num_classes)], ncol=3)
    return fig


def classification_figure(
    image: torch.Tensor, target: torch.Tensor | None, prediction: torch.Tensor, rgb: Sequence[int], class_names=None
) -> Figure:
    """A grid of RGB composites titled with reference → predicted class."""
    n = image.shape[0]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.0 * cols, 2.1 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
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


def detection_figure(
    image: torch.Tensor,
    targets: Sequence[dict] | None,
    predictions: Sequence[dict],
    rgb: Sequence[int],
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    class_colors: Sequence[str] | None = None,
) -> Figure:
    """Rows = samples: RGB with reference boxes | RGB with predicted boxes (score ≥ threshold, shown).

    ``targets``/``predictions`` are torchvision-style dicts (``boxes`` ``[N, 4]`` as x1, y1, x2, y2
    in pixels, ``labels``, and ``scores`` for predictions); label 0 is background, so
    ``class_names[k]`` names label ``k``.
    """
    n = image.shape[0]
    cols = 2 if targets is not None else 1
    fig = Figure(figsize=(2.6 * cols, 2.6 * n))
    axes = fig.subplots(n, cols, squeeze=False)
    names = list(class_names) if class_names else None
    cmap = class_colormap(len(names) if names else 10, class_colors)
    for row in range(n):
        composite = rgb_composite(image[row], rgb)
        panels = ([(targets[row], "reference")] if targets is not None else []) + [(predictions[row], "prediction")]
        for k, (boxes, title) in enumerate(panels):
            ax = axes[row, k]
            ax.imshow(composite, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=8)
            scores = boxes.get("scores")
            for j, (box, label) in enumerate(zip(boxes["boxes"].tolist(), boxes["labels"].tolist())):
                if scores is not None and float(scores[j]) < score_threshold:
                    continue
                x1, y1, x2, y2 = box
                # Boxes are pixel corners; imshow puts pixel centres on integers.
                ax.add_patch(
                    matplotlib.patches.Rectangle(
                        (x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.2, edgecolor=cmap(int(label) % cmap.N)
                    )
                )
                if scores is not None:
                    ax.text(x1 - 0.5, y1 - 0.5, f"{float(scores[j]):.2f}", fontsize=5, color="white", va="bottom")
    if names:  # label 0 is background: no box, no legend entry
        handles = [matplotlib.patches.Patch(color=cmap(i), label=name) for i, name in enumerate(names) if i]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
    return fig


def multilabel_figure(
    image: torch.Tensor,
    target: torch.Tensor | None,
    probabilities: torch.Tensor,
    rgb: Sequence[int],
    class_names: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> Figure:
    """A grid of RGB composites titled with the reference labels and the predicted ones
    (probability ≥ ``threshold``, with their probabilities)."""
    n, k = probabilities.shape
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.3 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(rgb_composite(image[i], rgb))
        predicted = ", ".join(f"{names[j]} {float(probabilities[i, j]):.2f}" for j in range(k) if probabilities[i, j] >= threshold)
        title = f"pred: {predicted or '—'}"
        if target is not None:
            title = f"ref: {', '.join(names[j] for j in range(k) if target[i, j] > 0) or '—'}\n" + title
        ax.set_title(title, fontsize=6)
    return fig


def cell_map(values: torch.Tensor, grid, image_size: Sequence[int]) -> np.ndarray:
    """Per-token values ``[B, G·h·w]`` → per-pixel ``[B, H, W]`` (mean over the spectral groups of a cell)."""
    cells = values.float().reshape(values.shape[0], grid.groups, grid.height, grid.width).mean(dim=1)
    pixels = cells.repeat_interleave(grid.patch_size, dim=1).repeat_interleave(grid.patch_size, dim=2)
    return pixels[:, : image_size[0], : image_size[1]].cpu().numpy()


def saliency_masking_figure(
    masking,
    image: torch.Tensor,
    grid,
    progresses: Sequence[float],
    rgb: Sequence[int],
    seed: int = 0,
) -> Figure:
    """Rows = samples: RGB | each index map | saliency map | the chosen mask at each training progress.

    ``masking`` is a :class:`~terratorch_specmae.masking.SaliencyMasking`, ``image`` the batch as
    the model sees it ``[B, C, H, W]`` and ``grid`` its token grid. Hidden cells are darkened
    (partly, for cube tokens with only some spectral groups hidden); each mask is drawn with
    the same ``seed`` so the panels differ only by the curriculum's γ.
    """
    index_maps = masking.index_maps(image).cpu().numpy()
    saliency = cell_map(masking.saliency(image, grid.patch_size).repeat(1, grid.groups), grid, image.shape[-2:])
    masks = []
    for progress in progresses:
        generator = torch.Generator(device=image.device).manual_seed(seed)
        token_mask = masking(grid, image.shape[0], image.device, generator=generator, image=image, progress=progress)
        masks.append((progress, masking.curriculum(progress), cell_map(token_mask.mask, grid, image.shape[-2:])))
    names = masking.indices.names
    # one colour range per index, shared by the samples: 2nd–98th percentile of the batch's values
    limits = [tuple(np.percentile(index_maps[:, k], [2, 98])) for k in range(len(names))]
    n, cols = image.shape[0], 2 + len(names) + len(masks)
    panel = 1.9 if n > 1 else 3.0
    fig = Figure(figsize=(panel * cols, panel * n))
    axes = fig.subplots(n, cols, squeeze=False)
    for row in range(n):
        composite = rgb_composite(image[row], rgb)
        panels = [(composite, None, "image", None)]
        panels += [(index_maps[row, k], "RdYlGn", f"{name} {lo:+.2f}…{hi:+.2f}", (lo, hi))
                   for k, (name, (lo, hi)) in enumerate(zip(names, limits, strict=True))]
        panels.append((saliency[row], "magma", f"saliency (α={masking.alpha})", (0, 1)))
        for progress, gamma, hidden in masks:
            shade = 0.8 * hidden[row][..., None]
            panels.append((composite * (1 - shade), None, f"mask @ {progress:.0%} (γ={gamma:.2f})", None))
        for k, (data, cmap, title, value_range) in enumerate(panels):
            ax = axes[row, k]
            vmin, vmax = value_range or (None, None)
            ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=7)
    fig.suptitle(
        f"{masking.order.replace('_', '-')} saliency masking, ratio {masking.mask_ratio}: dark cells are hidden; "
        f"γ of the hidden budget goes to the {'most' if masking.order == 'hard_first' else 'least'} salient cells",
        fontsize=8,
    )
    return fig


def spectral_masking_figure(
    similarity: np.ndarray,
    spectrum: np.ndarray,
    band_labels: Sequence[str],
    anchor: int,
    masks: dict[str, np.ndarray],
) -> Figure:
    """Band-similarity matrix (anchor row outlined) | the patch's mean spectrum with each strategy's masked bands.

    ``similarity`` ``[C, C]`` cosine similarities, ``spectrum`` ``[C]``, ``masks`` name → ``[C]`` bool
    (True = masked), drawn one row each under the spectrum.
    """
    c = len(band_labels)
    fig = Figure(figsize=(11, 4.2))
    grid = fig.add_gridspec(1 + len(masks), 2, width_ratios=[1, 1.6], height_ratios=[3] + [1] * len(masks), wspace=0.4)
    ax = fig.add_subplot(grid[:, 0])
    image = ax.imshow(similarity, cmap="viridis", vmin=float(similarity.min()), vmax=1.0)
    ax.add_patch(matplotlib.patches.Rectangle((-0.5, anchor - 0.5), c, 1, fill=False, edgecolor="red", lw=1.5))
    step = max(1, c // 8)
    ax.set_xticks(range(0, c, step), [band_labels[i] for i in range(0, c, step)], rotation=90, fontsize=6)
    ax.set_yticks(range(0, c, step), [band_labels[i] for i in range(0, c, step)], fontsize=6)
    ax.set_title(f"cosine similarity between bands (anchor {band_labels[anchor]} outlined)", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax = fig.add_subplot(grid[0, 1])
    ax.plot(range(c), spectrum, color="black", lw=1)
    ax.axvline(anchor, color="red", lw=1, ls="--")
    ax.set_xlim(-0.5, c - 0.5)
    ax.set_xticks([])
    ax.set_title("mean value of each band over the patch (red: MRS anchor)", fontsize=8)
    for row, (name, mask) in enumerate(masks.items(), start=1):
        ax = fig.add_subplot(grid[row, 1])
        ax.imshow(mask[None].astype(float), cmap="Greys", vmin=0, vmax=1.25, aspect="auto", interpolation="nearest")
        ax.set_yticks([0], [f"{name}\n{int(mask.sum())}/{c} masked"], fontsize=7)
        ax.set_xticks(range(0, c, step), [band_labels[i] for i in range(0, c, step)] if row == len(masks) else [],
                      rotation=90, fontsize=6)
    fig.suptitle("MRS masks the anchor band and the bands most similar to it; random spectral masking leaves "
                 "near-copies of masked bands visible (dark = masked)", fontsize=8)
    return fig
