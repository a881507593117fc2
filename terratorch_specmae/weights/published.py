"""The public weights in the catalogue: what ``backbone_pretrained: true`` and ``<variant>.<tag>`` load.

=====================================  ============================  =========================================
name (``backbone:``)                   weights                       source
=====================================  ============================  =========================================
``s2mae_vit_base.spectralgpt_plus``    SpectralGPT+ (default)        Zenodo record 8412455, ``SpectralGPT+.pth``
``s2mae_vit_base.spectralgpt``         SpectralGPT                   Zenodo record 8412455, ``SpectralGPT.pth``
``sigmae_vit_{small,base,large}``      SSL4EO-S12 MAE (default)      the Hub, as TorchGeo's ``ViT*16_Weights``
``.ssl4eo_s12_mae``                                                  ``.SENTINEL2_ALL_MAE``
``sigmae_vit_{small,base,large}``      SSL4EO-S12 FG-MAE             ``….SENTINEL2_ALL_FGMAE``
``.ssl4eo_s12_fgmae``
=====================================  ============================  =========================================

The ``_mae`` variants (``s2mae_vit_base_mae``, ``sigmae_vit_*_mae``) take the same tags, for
continued pretraining: SpectralGPT(+) brings its decoder too; the SSL4EO-S12 files hold encoders
only, so those MAEs start with a fresh decoder.

**Which weights fit which family.** SpectralGPT shares S2MAE's architecture (``3×8×8`` cube
tokens over 12 Sentinel-2 bands, separate spatial and spectral tables, no class token) and
converts one to one. The SSL4EO-S12 ViTs are plain ViTs over ``16×16`` patches of all 13 bands:
SIGMAE's architecture, not S2MAE's. ViT-H/14 weights have no size of ours and are not listed.
SatMAE's multispectral ViT is not listed either: its bands are split into three groups with a
patch embedding each, which our one-kernel tokenizers cannot hold without changing what it computes.

**What they were trained with** (the model card of anything trained from them says it too):

* SpectralGPT(+): random 3D masking at 90 %, each image's bands min–max scaled to [0, 1] on
  their own (``scaling: minmax_per_image``), and a loss with a second term — the MSE of the
  reconstruction summed over the bands of each group — that our pretraining task does not train.
* SSL4EO-S12 MAE / FG-MAE: MAE's plain random masking of 2D patches (FG-MAE reconstructs HOG
  and spectral-index features instead of pixels), Sentinel-2 L1C digital numbers divided by
  10 000 (``mean`` 0, ``std`` 10 000 per band, TorchGeo's own transform for these weights),
  224 px. SIGMAE's saliency masking on top of them is continued pretraining, not what they saw.

The SSL4EO-S12 entries are read from the installed TorchGeo's ``WeightsEnum`` (URL and its
pinned revision, bands, normalisation, image size), not copied here.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

from terratorch_specmae.bands import SENSOR_PRESETS
from terratorch_specmae.weights.catalogue import PretrainedCfg, register_pretrained_cfg

SPECTRALGPT_RECORD = "8412455"
SPECTRALGPT_CITATION = (
    "Hong, D., Zhang, B., Li, X., Li, Y., Li, C., Yao, J., Yokoya, N., Li, H., Ghamisi, P., Jia, X., Plaza, A., "
    "Gamba, P., Benediktsson, J. A., Chanussot, J.: SpectralGPT: Spectral Remote Sensing Foundation Model. "
    "IEEE Transactions on Pattern Analysis and Machine Intelligence 46(8), 5227–5244 (2024). "
    "doi:10.1109/TPAMI.2024.3362475"
)
SPECTRALGPT_TERMS = (
    "The weights' terms are those of Zenodo record 8412455 (check them before redistributing); the SpectralGPT "
    "repository (github.com/danfenghong/IEEE_TPAMI_SpectralGPT) states GPL-3.0 for its code."
)
SPECTRALGPT_MAE_ARGS = {  # SpectralGPT's pretraining model (models_mae_spectral: its class defaults)
    "decoder_embed_dim": 512,
    "decoder_depth": 4,
    "decoder_num_heads": 16,
    "decoder_pos_embed": "learnable",
    "masking": "cube_random",
    "mask_ratio": 0.9,
    "target_norm": "minmax",
}
SSL4EO_CITATIONS = {
    "mae": (
        "Wang, Y., Ait Ali Braham, N., Xiong, Z., Liu, C., Albrecht, C. M., Zhu, X. X.: SSL4EO-S12: A large-scale "
        "multimodal, multitemporal dataset for self-supervised learning in Earth observation. IEEE Geoscience and "
        "Remote Sensing Magazine 11(3), 98–106 (2023). arXiv:2211.07044"
    ),
    "fg-mae": (
        "Wang, Y., Hernández, H. H., Albrecht, C. M., Zhu, X. X.: Feature guided masked autoencoder for "
        "self-supervised learning in remote sensing. arXiv:2310.18653 (2023)"
    ),
}
SSL4EO_SIZES = {"small": "ViTSmall16_Weights", "base": "ViTBase16_Weights", "large": "ViTLarge16_Weights"}
SSL4EO_TAGS = {"SENTINEL2_ALL_MAE": "ssl4eo_s12_mae", "SENTINEL2_ALL_FGMAE": "ssl4eo_s12_fgmae"}


def _register_both(variant: str, tag: str, cfg: PretrainedCfg, mae_args: dict | None = None, default: bool = False):
    """``variant.tag`` (the encoder) and ``variant_mae.tag`` (the MAE around it, with ``mae_args``)."""
    register_pretrained_cfg(variant, cfg, tag, default)
    mae = PretrainedCfg.from_dict(cfg.to_dict())
    mae.model_args = {**(cfg.model_args or {}), **(mae_args or {})}
    register_pretrained_cfg(f"{variant}_mae", mae, tag, default)


def register_spectralgpt() -> None:
    for tag, filename, size, data in (
        ("spectralgpt", "SpectralGPT.pth", 96, "fMoW-Sentinel (96 px, 200 epochs)"),
        ("spectralgpt_plus", "SpectralGPT+.pth", 128,
         "fMoW-Sentinel (96 px), then continued on BigEarthNet-S2 (128 px)"),
    ):  # fmt: skip
        cfg = PretrainedCfg(
            zenodo_record=SPECTRALGPT_RECORD,
            filename=filename,
            converter="spectralgpt",
            model_args={"patch_size": 8, "spectral_patch_size": 3, "pos_embed": "learnable", "mlp_ratio": 4.0},
            bands=list(SENSOR_PRESETS["sentinel2_l2a"]),
            scaling="minmax_per_image",
            img_size=[size, size],
            pretraining_data=data,
            masking="cube_random",
            mask_ratio=0.9,
            source=f"SpectralGPT ({filename}, https://zenodo.org/records/{SPECTRALGPT_RECORD}), converted one to one",
            license="other",
            terms=SPECTRALGPT_TERMS,
            citation=SPECTRALGPT_CITATION,
        )
        _register_both("s2mae_vit_base", tag, cfg, SPECTRALGPT_MAE_ARGS, default=tag == "spectralgpt_plus")


def sentinel2_name(name: str) -> str:
    """TorchGeo's Sentinel-2 band names → ours: ``B1`` → ``B01``, ``B8a`` → ``B8A``."""
    match = re.fullmatch(r"B(\d{1,2})([aA]?)", name)
    if not match:
        raise ValueError(f"Not a Sentinel-2 band name: {name!r}.")
    return "B8A" if match.group(2) else f"B{int(match.group(1)):02d}"


def hub_location(url: str) -> tuple[str, str, str]:
    """``https://huggingface.co/<org>/<repo>/resolve/<revision>/<file>`` (or ``hf.co``) → (repo, revision, file)."""
    parsed = urlparse(url)
    parts = unquote(parsed.path).strip("/").split("/")
    if parsed.netloc not in ("huggingface.co", "hf.co") or len(parts) < 5 or parts[2] != "resolve":
        raise ValueError(f"Not a Hub file URL: {url!r}.")
    return "/".join(parts[:2]), parts[3], "/".join(parts[4:])


def _transform_stats(transforms, n_bands: int) -> tuple[list[float], list[float], int | None]:
    """Per-band mean / std of the ``Normalize`` step of a TorchGeo weights' transforms (torchvision's or
    kornia's), and the size of its ``CenterCrop``."""
    mean = std = crop = None
    for step in transforms.children() if hasattr(transforms, "children") else ():
        name, flags = type(step).__name__, getattr(step, "flags", {}) or {}
        if name == "Normalize":
            mean, std = getattr(step, "mean", flags.get("mean")), getattr(step, "std", flags.get("std"))
        elif name == "CenterCrop":
            size = getattr(step, "size", None) or flags.get("size")
            crop = int(size[0] if isinstance(size, tuple | list) else size)
    if mean is None or std is None:
        raise ValueError(f"No Normalize step in the weights' transforms {transforms!r}.")

    def per_band(values) -> list[float]:
        values = values.flatten().tolist() if hasattr(values, "flatten") else list(values)
        values = [float(v) for v in values]
        return values * n_bands if len(values) == 1 else values

    return per_band(mean), per_band(std), crop


def ssl4eo_cfg(weights, method: str) -> PretrainedCfg:
    """The catalogue entry of one TorchGeo ``WeightsEnum`` member of the SSL4EO-S12 ViTs."""
    meta = dict(weights.meta)
    repo, revision, filename = hub_location(weights.url)
    bands = [sentinel2_name(b) for b in meta["bands"]]
    if len(bands) != meta.get("in_chans", len(bands)):
        raise ValueError(f"TorchGeo's {weights} names {len(bands)} bands for in_chans={meta.get('in_chans')}.")
    mean, std, crop = _transform_stats(weights.transforms, len(bands))
    patch = int(re.search(r"patch(\d+)", meta["model"]).group(1))
    size = crop or int(re.search(r"_(\d+)$", meta["model"]).group(1))
    ssl = meta.get("ssl_method", method)
    return PretrainedCfg(
        hf_hub_id=repo,
        filename=filename,
        revision=revision,
        converter="timm-vit",
        model_args={"patch_size": patch, "spectral_patch_size": None, "pos_embed": "learnable"},
        bands=bands,
        scaling="standardize",
        mean=mean,
        std=std,
        img_size=[size, size],
        pretraining_data=f"{meta.get('dataset', 'SSL4EO-S12')}: Sentinel-2 L1C, {len(bands)} bands, {size} px",
        masking="random (MAE)" if ssl == "mae" else "random (FG-MAE: HOG and spectral-index targets)",
        source=f"{meta.get('dataset', 'SSL4EO-S12')} {ssl.upper()} {meta['model']} ({meta.get('repo', '')}), "
        f"through TorchGeo's {type(weights).__name__}.{weights.name}; class token dropped",
        license="cc-by-4.0",  # SSL4EO-S12's README (weights CC-BY-4.0); TorchGeo's weights table lists FG-MAE's alike
        citation=SSL4EO_CITATIONS.get(ssl, meta.get("publication")),
    )


def register_ssl4eo() -> None:
    import torchgeo.models as tgm

    for size, enum_name in SSL4EO_SIZES.items():
        enum = getattr(tgm, enum_name, None)
        for member, tag in SSL4EO_TAGS.items():
            weights = getattr(enum, member, None) if enum is not None else None
            if weights is None:
                continue  # an older TorchGeo without it: the entry is simply not offered
            _register_both(f"sigmae_vit_{size}", tag, ssl4eo_cfg(weights, tag), default=tag == "ssl4eo_s12_mae")


register_spectralgpt()
register_ssl4eo()
