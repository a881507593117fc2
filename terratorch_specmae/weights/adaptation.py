"""Fitting pretrained weights to another band set or image size.

Where band identity lives in our models:

* ``pos_embed.spectral`` ``[1, G, D]`` (learnable tables): one row per spectral group of ``t`` bands;
* the tokenizer kernel ``tokenizer.proj.weight`` ``[D, 1, t, p, p]`` of **2D patch tokens**
  (``t`` = all bands): one slice per band. A **cube** kernel (``t`` < bands) is shared by every
  group, so it carries no band identity and loads as it is;
* the MAE decoder's prediction head of 2D patch tokens (one block of rows per band), and its
  position tables when they are learnable.

Each band of the new set is matched to the checkpoint's bands by name, then by its standard
spectral key (spyndex's common name: Sentinel-2 ``B08`` and Landsat ``NIR_BROAD`` are both "N").
A band with no match is *new* and initialised per ``new_band_init``:

* ``"wavelength"`` (default): linear interpolation, by centre wavelength, between the two
  checkpoint bands on either side of it (the nearest one outside their range); a band with no
  wavelength (SAR, LiDAR) or a checkpoint without wavelengths falls back to zero;
* ``"zero"``: zeros — at the start the new band adds nothing to what the pretrained bands give;
* ``"error"``: a new band is an error.

The same bands in another order (EuroSAT's files keep B8A last) are not mixed at all: the
weights load unchanged and the encoder feeds its input channels in the checkpoint's order (its
``band_order`` buffer), so features equal the checkpoint model's on reordered input exactly.

Otherwise everything is one linear map per band: a ``[new bands, checkpoint bands]`` mixing matrix
(:func:`band_mixing`) applied to per-band entries. A new spectral group's row is the mean of the
per-band rows of its bands that have a source (zero-initialised new bands do not dilute it).

Image size: the learnable spatial table ``pos_embed.spatial`` is resampled bicubically to the new
token grid (timm's ``resample_abs_pos_embed``, the same resampling the encoder applies on the fly
to inputs of other sizes) or, with ``resize_pos_embed="reinit"``, left at the model's fresh
initialisation (what SpectralGPT's stage-2 pretraining does).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from timm.layers import resample_abs_pos_embed

from terratorch_specmae.bands import DEFAULT_BANDS, band_info, band_list

NEW_BAND_INITS = ("wavelength", "zero", "error")
POS_EMBED_RESIZES = ("interpolate", "reinit")


@dataclass(frozen=True)
class SourceLayout:
    """What a checkpoint was trained on: its band names (None when the file does not say) and image size."""

    bands: tuple[str, ...] | None = None
    img_size: tuple[int, int] | None = None


def _wavelength(name: str) -> float:
    try:
        return band_info(name).wavelength_nm
    except ValueError:
        return math.nan


def _common_name(name: str) -> str:
    try:
        return band_info(name).common_name
    except ValueError:
        return ""


def match_band(name: str, source: Sequence[str]) -> int | None:
    """Index of ``name`` among ``source`` bands: same name, else the one band with the same standard key."""
    if name in source:
        return list(source).index(name)
    key = _common_name(name)
    same_key = [i for i, s in enumerate(source) if key and _common_name(s) == key]
    return same_key[0] if len(same_key) == 1 else None


def band_mixing(target: Sequence[str], source: Sequence[str], new_band_init: str = "wavelength") -> torch.Tensor:
    """``[len(target), len(source)]`` matrix writing each target band as a mix of source bands.

    Matched bands are one-hot rows; new bands follow ``new_band_init`` (see the module docstring).
    """
    if new_band_init not in NEW_BAND_INITS:
        raise ValueError(f"new_band_init must be one of {NEW_BAND_INITS}, got {new_band_init!r}.")
    mixing = torch.zeros(len(target), len(source), dtype=torch.float64)
    known = [(wl, i) for i, s in enumerate(source) if not math.isnan(wl := _wavelength(s))]
    known.sort()
    for j, name in enumerate(target):
        i = match_band(name, source)
        if i is not None:
            mixing[j, i] = 1.0
            continue
        if new_band_init == "error":
            raise ValueError(
                f"Band {name!r} is not among the checkpoint's bands {list(source)} (matched by name or "
                "standard spectral key); drop it, or set new_band_init to 'wavelength' or 'zero'."
            )
        wl = _wavelength(name)
        if new_band_init == "zero" or math.isnan(wl) or not known:
            continue
        below = [(w, i) for w, i in known if w <= wl]
        above = [(w, i) for w, i in known if w > wl]
        if not below:
            mixing[j, above[0][1]] = 1.0
        elif not above:
            mixing[j, below[-1][1]] = 1.0
        else:
            (w0, i0), (w1, i1) = below[-1], above[0]
            share = (wl - w0) / (w1 - w0)
            mixing[j, i0], mixing[j, i1] = 1.0 - share, share
    return mixing


def band_permutation(target: Sequence[str], source: Sequence[str]) -> list[int] | None:
    """``order`` with ``target[order[k]]`` the band of ``source[k]`` when ``target`` holds exactly the
    ``source`` bands (by name or standard key) in any order; None when the sets differ."""
    if len(target) != len(source):
        return None
    order = [match_band(name, target) for name in source]
    if None in order or len(set(order)) != len(order):
        return None
    return order


def mix_band_slices(weight: torch.Tensor, mixing: torch.Tensor, dim: int) -> torch.Tensor:
    """Apply the band mixing matrix along ``dim`` (one entry per band) of ``weight``."""
    moved = weight.movedim(dim, 0).double()
    mixed = torch.tensordot(mixing, moved, dims=([1], [0]))
    return mixed.movedim(0, dim).to(weight.dtype).contiguous()


def group_table(
    table: torch.Tensor, mixing: torch.Tensor, source_t: int, target_t: int
) -> torch.Tensor:
    """Spectral table ``[1, G_src, D]`` → ``[1, G_new, D]`` following the bands (module docstring)."""
    n_target, n_source = mixing.shape
    groups = math.ceil(n_target / target_t)
    if table.shape[1] == 1 and groups == 1:  # 2D patches: one row for all bands
        return table.clone()
    per_band = table[0, torch.arange(n_source) // source_t].double()  # each source band's group row
    mixed = mixing @ per_band  # [n_target, D], in float64 so that a group of one source row stays exact
    has_source = mixing.sum(dim=1) > 0
    rows = []
    for g in range(groups):
        members = slice(g * target_t, min((g + 1) * target_t, n_target))
        count = has_source[members].sum()
        rows.append(mixed[members].sum(dim=0) / count.clamp(min=1))
    return torch.stack(rows)[None].to(table.dtype)


def resize_spatial_table(
    table: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]
) -> torch.Tensor:
    """Spatial table ``[1, h·w, D]`` of one token grid resampled (bicubic) to another."""
    return resample_abs_pos_embed(table, new_size=list(new_grid), old_size=list(old_grid), num_prefix_tokens=0)


def source_grid(table: torch.Tensor, source: SourceLayout, patch_size: int) -> tuple[int, int]:
    """The token grid of a checkpoint's spatial table: from its image size, else a square."""
    n = table.shape[1]
    if source.img_size is not None:
        grid = tuple(math.ceil(s / patch_size) for s in source.img_size)
        if grid[0] * grid[1] == n:
            return grid
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(
            f"The checkpoint's spatial position table has {n} cells, which is not a square grid, and the "
            "checkpoint does not record its image size; pass pretrained_img_size."
        )
    return side, side


def _kernel_layout(state: dict, key: str, what: str) -> tuple[int, int]:
    """``(t, p)`` of a checkpoint's tokenizer kernel ``[D, 1, t, p, p]``."""
    kernel = state[key]
    if kernel.ndim != 5:
        raise ValueError(f"{what}: {key} has shape {tuple(kernel.shape)}; expected a Conv3d kernel [D, 1, t, p, p].")
    return kernel.shape[2], kernel.shape[3]


def _source_bands(source: SourceLayout, model_bands: Sequence[str], fits: bool, what: str) -> tuple[str, ...]:
    if source.bands is not None:
        return tuple(source.bands)
    if fits:
        return tuple(model_bands)
    raise ValueError(
        f"{what}: the checkpoint does not record its bands and its shapes do not fit this model's "
        f"{len(model_bands)} bands {list(model_bands)}; pass pretrained_bands (the checkpoint's band names, in order)."
    )


def adapt_encoder_state(
    state: dict[str, torch.Tensor],
    encoder,
    source: SourceLayout,
    new_band_init: str = "wavelength",
    resize_pos_embed: str = "interpolate",
) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """A :class:`SpectralViT` checkpoint state (keys without prefix) fitted to ``encoder``'s bands and grid.

    Returns the adapted state, notes on what was adapted, the model's bands the checkpoint
    lacks and the checkpoint's bands in the order its weights hold them.

    The same bands in another order are not mixed: the weights load as they are and the state's
    ``band_order`` makes the encoder feed its input in the checkpoint's order. Shapes that cannot
    be adapted (width, depth, patch size, bands per cube) are left for the caller's shape check to
    report.
    """
    if resize_pos_embed not in POS_EMBED_RESIZES:
        raise ValueError(f"resize_pos_embed must be one of {POS_EMBED_RESIZES}, got {resize_pos_embed!r}.")
    state, notes, new = dict(state), [], []
    key = "tokenizer.proj.weight"
    if key not in state:
        return state, notes, new, source.bands
    what = type(encoder).__name__
    t_src, p_src = _kernel_layout(state, key, what)
    t, p = encoder.tokenizer.spectral_patch_size, encoder.patch_size
    model_bands = tuple(encoder.bands)
    if p_src != p:
        raise ValueError(f"{what}: the checkpoint's tokens are {p_src}×{p_src} px patches, this model's {p}×{p}; set patch_size: {p_src}.")
    width, model_width = state[key].shape[0], encoder.tokenizer.proj.weight.shape[0]
    if width != model_width:  # before the bands: a width mismatch is no matter of band information
        raise ValueError(
            f"{what}: the checkpoint's encoder width (embed_dim) is {width}, this model's {model_width}; build the "
            f"variant the checkpoint was trained as (embed_dim: {width})."
        )
    spectral = state.get("pos_embed.spectral")
    fits = state[key].shape == encoder.tokenizer.proj.weight.shape and (
        spectral is None or spectral.shape[1] == encoder.tokenizer.groups
    )
    bands = _source_bands(source, model_bands, fits, what)
    groups = spectral.shape[1] if spectral is not None else 1
    fitting = [t_src] if groups == 1 else range((groups - 1) * t_src + 1, groups * t_src + 1)
    if "band_order" in state:  # the checkpoint's own band count, exactly
        fitting = [len(state["band_order"])]
    span = f"{fitting[0]}" if len(fitting) == 1 else f"{fitting[0]}–{fitting[-1]}"
    # 1-band tokens without a spectral table (SS-MAE's spectral branch) say nothing about the band count
    if source.bands is not None and (spectral is not None or t_src > 1) and len(bands) not in fitting:
        raise ValueError(
            f"{what}: {len(bands)} band names {list(bands)} do not fit the checkpoint, whose weights hold "
            f"{groups} spectral group(s) of {t_src} bands ({span} bands); pretrained_bands (or the bands the file records) must list the checkpoint's bands, in order."
        )
    if source.bands is None and model_bands != DEFAULT_BANDS:
        warnings.warn(
            f"{what}: the checkpoint does not record its bands; assumed they are this model's {list(model_bands)}, "
            "in this order. If it was trained on other bands or another order, pass pretrained_bands "
            "(backbone_pretrained_bands in a TerraTorch config): the checkpoint's band names, in order.",
            stacklevel=2,
        )
    src_2d, model_2d = t_src == len(bands), t == len(model_bands)
    if spectral is not None and spectral.shape[1] != math.ceil(len(bands) / t_src):
        raise ValueError(
            f"{what}: the checkpoint has {spectral.shape[1]} spectral groups of {t_src} bands, which does not "
            f"fit its {len(bands)} bands {list(bands)}; check pretrained_bands."
        )
    recorded = state.pop("band_order", None)
    if recorded is not None:  # the checkpoint's model fed its input in this order: its weights' band order
        if sorted(recorded.tolist()) != list(range(len(bands))):
            raise ValueError(
                f"{what}: the checkpoint's band_order {recorded.tolist()} is not a permutation of its "
                f"{len(bands)} bands {list(bands)}; check pretrained_bands."
            )
        bands = tuple(bands[i] for i in recorded.tolist())
    if t_src != t and not (src_2d and model_2d):
        raise ValueError(
            f"{what}: the checkpoint's tokens span {t_src} bands ({'2D patches' if src_2d else 'cubes'}), this "
            f"model's {t} ({'2D patches' if model_2d else 'cubes'}); set spectral_patch_size to match."
        )
    mixing = None
    order = band_permutation(model_bands, bands)
    state["band_order"] = torch.tensor(order if order is not None else range(len(model_bands)), dtype=torch.long)
    if order is not None and order != list(range(len(model_bands))):
        # the same bands in another order: keep the weights, feed the input in the checkpoint's order
        notes.append(f"bands {band_list(bands)} → input {band_list(model_bands)}: input channels fed in the checkpoint's order")
    elif order is None:
        mixing = band_mixing(model_bands, bands, new_band_init)
        new = [b for b in model_bands if match_band(b, bands) is None]
        if src_2d and model_2d:
            state[key] = mix_band_slices(state[key], mixing, dim=2)
        notes.append(
            f"bands {band_list(bands)} → {band_list(model_bands)}"
            + (f" (new, {new_band_init}-initialised: {band_list(new)})" if new else "")
        )
    notes += fit_position_tables(state, encoder.pos_embed, mixing, t_src, t, source, p, resize_pos_embed)
    return state, notes, new, bands


def fit_position_tables(
    state: dict, pos_embed, mixing: torch.Tensor | None, source_t: int, target_t: int, source: SourceLayout,
    patch_size: int, resize_pos_embed: str,
) -> list[str]:
    """Fit the learnable tables of ``state`` (``pos_embed.spectral`` / ``.spatial``) to ``pos_embed``, in place:
    spectral rows follow the bands (``mixing``; None: the same bands), the spatial table the grid."""
    if pos_embed.kind != "learnable":
        return []
    spectral, spatial = state.get("pos_embed.spectral"), state.get("pos_embed.spatial")
    if spectral is not None and mixing is not None:
        state["pos_embed.spectral"] = group_table(spectral, mixing, source_t, target_t)
    if spatial is None:
        return []
    old, target = source_grid(spatial, source, patch_size), pos_embed.grid_size
    if tuple(old) == tuple(target):
        return []
    if resize_pos_embed == "interpolate":
        state["pos_embed.spatial"] = resize_spatial_table(spatial, old, target)
    else:
        state["pos_embed.spatial"] = pos_embed.spatial.detach().clone()
    return [f"spatial positions {old[0]}×{old[1]} → {target[0]}×{target[1]} ({resize_pos_embed})"]


def adapt_decoder_state(
    state: dict[str, torch.Tensor],
    decoder,
    encoder,
    source: SourceLayout,
    new_band_init: str = "wavelength",
    resize_pos_embed: str = "interpolate",
) -> dict[str, torch.Tensor]:
    """An :class:`MAEDecoder` checkpoint state fitted to the bands and grid of ``encoder`` (its MAE's).

    ``source.bands`` are in the order the weights hold them (as :func:`adapt_encoder_state` returns);
    the same bands in another order need no change (the encoder reorders its input)."""
    state = dict(state)
    pred = state.get("pred.weight")
    if pred is None:
        return state
    model_bands = tuple(encoder.bands)
    t, p = encoder.tokenizer.spectral_patch_size, encoder.patch_size
    pixels = p * p
    t_src = pred.shape[0] // pixels
    fits = pred.shape == decoder.pred.weight.shape
    bands = _source_bands(source, model_bands, fits, type(decoder).__name__)
    mixing = None if band_permutation(model_bands, bands) is not None else band_mixing(model_bands, bands, new_band_init)
    if mixing is not None and t_src == len(bands) and t == len(model_bands):  # 2D patches: rows per band
        for name in ("pred.weight", "pred.bias"):
            value = state[name]
            per_band = value.reshape(len(bands), pixels, *value.shape[1:])
            state[name] = mix_band_slices(per_band, mixing, dim=0).reshape(len(model_bands) * pixels, *value.shape[1:])
    fit_position_tables(state, decoder.pos_embed, mixing, t_src, t, source, p, resize_pos_embed)
    return state
