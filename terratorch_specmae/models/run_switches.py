"""Run switches: how a built model runs here, not what it is.

Activation checkpointing, ``torch.compile`` of the transformer blocks and our bf16 CPU attention
kernel change speed and memory, never the weights or the outputs' meaning. So they are not
constructor arguments (a model's constructor takes its architecture only), they are not saved
with the weights nor published: they are switched on after the model is built and its weights
loaded — by the builders the registries call (``backbone_grad_checkpointing: true`` in YAML), or
by hand::

    model = SpectralMAE(...)
    model.set_grad_checkpointing()
    model.use_cpu_attention_kernel()
    model.compile_blocks({"dynamic": False})
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from terratorch_specmae.layers.attention import use_cpu_attention_kernel

RUN_OPTIONS = ("grad_checkpointing", "compile", "cpu_attention_kernel")  # the builders' names for the switches


def compile_blocks(blocks: nn.ModuleList, options: bool | dict) -> dict | None:
    """``torch.compile`` each block in place (``nn.Module.compile``: parameter names stay as they are)."""
    if not options:
        return None
    if not isinstance(options, (bool, dict)):
        raise TypeError(f"compile must be true, false or a dict of torch.compile options, got {options!r}.")
    options = {"dynamic": False, **(options if isinstance(options, dict) else {})}
    for block in blocks:
        block.compile(**options)
    return options


def run_block(block: nn.Module, tokens: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """``block(tokens)``, with activation checkpointing when asked and gradients are being recorded."""
    if checkpointed and torch.is_grad_enabled():
        return checkpoint(block, tokens, use_reentrant=False)
    return block(tokens)


class BlockSwitches:
    """The run switches of a module with transformer ``blocks`` (the encoder, the MAE decoder).

    ``grad_checkpointing``: recompute each block's activations in the backward pass instead of
    keeping them — less memory per sample for about one more forward pass of compute.
    ``compile_blocks``: ``torch.compile`` each block (``True`` or a dict of options; default
    ``dynamic=False``: every sample keeps the same number of visible tokens, so a block compiles
    once per image size). ``use_cpu_attention_kernel``: our bf16 CPU attention kernel (see
    :mod:`terratorch_specmae.layers.attention`).
    """

    blocks: nn.ModuleList
    grad_checkpointing: bool = False
    compile_options: dict | None = None
    cpu_attention_kernel: bool = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if not isinstance(enable, bool):
            raise TypeError(f"grad_checkpointing must be true or false, got {enable!r}.")
        self.grad_checkpointing = enable

    def compile_blocks(self, options: bool | dict = True) -> None:
        compiled = compile_blocks(self.blocks, options)
        self.compile_options = compiled or self.compile_options  # compiled blocks stay compiled

    def use_cpu_attention_kernel(self, enable: bool = True) -> None:
        self.cpu_attention_kernel = use_cpu_attention_kernel(self.blocks, enable)


class CompositeSwitches:
    """The run switches of a model made of :class:`BlockSwitches` parts (an MAE, SS-MAE): each
    switch applies to every part, so one switch covers encoder and decoder alike."""

    def _switch_parts(self) -> list[BlockSwitches]:
        return [m for m in self.modules() if isinstance(m, BlockSwitches)]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for part in self._switch_parts():
            part.set_grad_checkpointing(enable)

    def compile_blocks(self, options: bool | dict = True) -> None:
        for part in self._switch_parts():
            part.compile_blocks(options)

    def use_cpu_attention_kernel(self, enable: bool = True) -> None:
        for part in self._switch_parts():
            part.use_cpu_attention_kernel(enable)


def apply_run_options(
    model: nn.Module,
    grad_checkpointing: bool = False,
    compile: bool | dict = False,  # noqa: A002 (TerraTorch's backbone_* naming: backbone_compile)
    cpu_attention_kernel: bool = False,
) -> nn.Module:
    """Switch on, on a built (and loaded) model, what the options :data:`RUN_OPTIONS` ask for."""
    if grad_checkpointing:
        model.set_grad_checkpointing(grad_checkpointing)
    if compile:
        model.compile_blocks(compile)
    if cpu_attention_kernel is not False:
        model.use_cpu_attention_kernel(cpu_attention_kernel)
    return model
