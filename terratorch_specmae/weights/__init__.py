"""The weights layer: reading weights files and Hub references, the known checkpoint layouts, fitting
weights to other bands and sizes, the pretrained-weights catalogue, model cards, publishing and
converters. It sits above the models (it imports them; they never import it).

==========================  ==================================================================
module                      what it holds
==========================  ==================================================================
``files``                   reading safetensors / torch / Lightning files and weights folders
``layouts``                 the known checkpoint layouts, as a table
``adaptation``              fitting weights to another band set or image size
``loading``                 :func:`load_weights` and its :class:`LoadReport`
``hub``                     Hub references → local files
``catalogue``               :class:`PretrainedCfg` and the registry of variants' weights (``variant.tag``)
``published``               the public weights in the catalogue (SpectralGPT(+), SSL4EO-S12 MAE / FG-MAE)
``downloads``               a catalogue entry → checked, converted, cached local weights
``card``                    model cards
``publishing``              ``save_pretrained`` / ``from_pretrained`` of our models
``converters``              SpectralGPT(+) and timm ViT (SSL4EO-S12) checkpoints → ours
==========================  ==================================================================
"""

from terratorch_specmae.weights import (
    published,  # noqa: F401  (registers the public weights in the catalogue)
    publishing,  # noqa: F401  (plugs save/from_pretrained into the models)
)
from terratorch_specmae.weights.adaptation import NEW_BAND_INITS, POS_EMBED_RESIZES, SourceLayout
from terratorch_specmae.weights.catalogue import (
    DEFAULT_TAGS,
    PRETRAINED_CFGS,
    PretrainedCfg,
    pretrained_cfg,
    pretrained_tags,
    register_pretrained_cfg,
    split_tag,
)
from terratorch_specmae.weights.converters import convert_spectralgpt
from terratorch_specmae.weights.downloads import DownloadError, cache_dir, fetch_pretrained, weights_for_variant
from terratorch_specmae.weights.files import WeightsFile, load_torch_file, read_weights, weights_from_torch_object
from terratorch_specmae.weights.hub import read_pretrained, resolve_weights
from terratorch_specmae.weights.layouts import LAYOUTS, CheckpointLayout, match_layout
from terratorch_specmae.weights.loading import LOAD_OPTIONS, LoadReport, check_load_options, load_weights
from terratorch_specmae.weights.publishing import SAVED_FILES

__all__ = [
    "DEFAULT_TAGS",
    "LAYOUTS",
    "LOAD_OPTIONS",
    "NEW_BAND_INITS",
    "POS_EMBED_RESIZES",
    "PRETRAINED_CFGS",
    "SAVED_FILES",
    "CheckpointLayout",
    "DownloadError",
    "LoadReport",
    "PretrainedCfg",
    "SourceLayout",
    "WeightsFile",
    "cache_dir",
    "check_load_options",
    "convert_spectralgpt",
    "fetch_pretrained",
    "load_torch_file",
    "load_weights",
    "match_layout",
    "pretrained_cfg",
    "pretrained_tags",
    "read_pretrained",
    "read_weights",
    "register_pretrained_cfg",
    "resolve_weights",
    "split_tag",
    "weights_for_variant",
    "weights_from_torch_object",
]
