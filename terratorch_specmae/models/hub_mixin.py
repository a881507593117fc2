"""``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` on our models, done by the weights layer.

Our models are huggingface_hub ``PyTorchModelHubMixin`` classes: the mixin records the constructor
arguments that rebuild a model, and gives it ``push_to_hub``. What a model says about itself —
its architecture as constructor arguments (:meth:`HubMixin.hub_config`) and the lines of its model
card — is here. Writing a folder, reading one and fitting its weights are the weights layer's
(:mod:`terratorch_specmae.weights.publishing`), which plugs itself in with
:func:`register_publisher` when it is imported (``import terratorch_specmae`` imports it), so
that models never import the weights layer.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import PyTorchModelHubMixin

_PUBLISHER: Any = None


def register_publisher(publisher: Any) -> None:
    """Plug in what reads and writes weights folders (:mod:`terratorch_specmae.weights.publishing`)."""
    global _PUBLISHER
    _PUBLISHER = publisher


def publisher() -> Any:
    if _PUBLISHER is None:  # pragma: no cover (importing any submodule imports the package, which plugs it in)
        raise RuntimeError("No weights publisher is registered: `import terratorch_specmae` first.")
    return _PUBLISHER


class HubMixin(
    PyTorchModelHubMixin,
    library_name="terratorch-specmae",
    tags=["earth-observation", "remote-sensing", "masked-autoencoder", "terratorch"],
    repo_url="https://github.com/terratorch-specmae/terratorch-specmae",
):
    """Hub publishing for our models (see the module docstring).

    A model carries ``pretrained_cfg`` (a :class:`~terratorch_specmae.weights.PretrainedCfg` or
    None): what its weights were trained on. It is written into ``config.json``, the safetensors
    metadata and the model card; set its ``mean``/``std``/``pretraining_data`` before publishing
    (``specmae export`` fills them from a pretraining run).
    """

    pretrained_cfg = None

    # ---- what a model says about itself
    def hub_config(self) -> dict:
        """The constructor arguments that rebuild this model (JSON-able); the bands by name, never a count."""
        config = dict(self._hub_mixin_config or {})
        config.pop("in_chans", None)
        if "bands" in self._hub_mixin_init_parameters:
            config["bands"] = list(self.bands)
        return config

    @classmethod
    def _kwargs_from_config(cls, config: dict, passed: dict) -> dict:
        """Constructor arguments: the saved config, overridden by what the caller passed."""
        known = {k for k in cls._hub_mixin_init_parameters if k != "self"}
        return {**{k: v for k, v in config.items() if k in known}, **passed}

    def family_tag(self) -> str:
        return "specmae"

    def card_summary(self) -> str:
        return (self.__doc__ or "").strip().split("\n")[0]

    def card_architecture(self) -> str:
        return ""

    def card_variant(self) -> str:
        return "<variant>"

    def card_masking(self) -> tuple[str | None, float | None]:
        """The masking the model pretrains with and its ratio, for the card (None for an encoder)."""
        return None, None

    # ---- huggingface_hub's methods, done by the weights layer
    def save_pretrained(self, save_directory, **kwargs):
        """Write ``config.json``, ``model.safetensors`` and a model card (``README.md``) into a folder
        (see :func:`terratorch_specmae.weights.publishing.save_pretrained`)."""
        return publisher().save_pretrained(self, save_directory, **kwargs)

    def _save_pretrained(self, save_directory) -> None:
        publisher().write_weights_folder(self, save_directory)

    def generate_model_card(self, *args, **kwargs):
        return publisher().model_card(self, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """A model from a ``save_pretrained`` folder or a Hub repo id (see
        :func:`terratorch_specmae.weights.publishing.from_pretrained`); keyword arguments override
        the saved architecture, and the load options (``pretrained_bands``, ``new_band_init`` …) and
        run switches (``compile`` …) of the builders are accepted."""
        return publisher().from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, config: dict | None = None, **kwargs):
        # `config` named in the signature: huggingface_hub then hands the saved config.json over
        return publisher().load_pretrained(cls, model_id=model_id, config=config, **kwargs)
