from terratorch_specmae.layers.pos_embed import SpatialSpectralPosEmbed
from terratorch_specmae.layers.tokenizer import CubeTokenizer, TokenGrid, patchify, unpatchify
from terratorch_specmae.models.decoder import MAEDecoder
from terratorch_specmae.models.encoder import SpectralViT, fold_spectral_groups
from terratorch_specmae.models.mae import SpectralMAE, masked_mse, target_statistics
from terratorch_specmae.models.ssmae import SSMAE, SSMAEEncoder

__all__ = [
    "CubeTokenizer",
    "MAEDecoder",
    "SSMAE",
    "SSMAEEncoder",
    "SpatialSpectralPosEmbed",
    "SpectralMAE",
    "SpectralViT",
    "TokenGrid",
    "fold_spectral_groups",
    "masked_mse",
    "patchify",
    "target_statistics",
    "unpatchify",
]
