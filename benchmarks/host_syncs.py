"""Where does a pretraining step make the host wait for the accelerator? Ops that sync, with the line that asked.

On a GPU, an op whose result the host must read (``.item()``, ``if tensor``, ``nonzero``, boolean
indexing, ``unique``, ``repeat_interleave`` without ``output_size``, a copy to the CPU, a tensor
made from host data or moved to the device: PyTorch waits for a blocking copy) stalls the
host until the device has caught up, so the next kernels are not queued ahead of time: the GPU
idles between steps' pieces. This script runs one pretraining step (forward, backward, AdamW) of
S2MAE, SIGMAE (saliency masking with its curriculum) and SS-MAE + MRS at small sizes, under a
``TorchDispatchMode`` that records every such op with the first line of this package that led to
it, and prints them grouped by line. It runs on the CPU too (the ops are the same; the ones that
would sync a GPU are listed), so syncs can be found and fixed without a GPU. On CUDA it also
counts the syncs ``torch.cuda.set_sync_debug_mode("warn")`` reports, the ground truth there.

    python benchmarks/host_syncs.py                 # CPU: the ops that would sync a GPU
    python benchmarks/host_syncs.py --device cuda   # and CUDA's own count
    python benchmarks/host_syncs.py --json syncs.json

``tests/test_host_syncs.py`` asserts that the S2MAE and SIGMAE training steps have none.
"""

from __future__ import annotations

import argparse
import json
import traceback
import warnings
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

PACKAGE = str(Path(__file__).resolve().parents[1] / "terratorch_specmae")

_aten = torch.ops.aten
#: ops that read device memory on the host (always, whatever their arguments)
SYNCING_OPS = {
    _aten._local_scalar_dense, _aten.nonzero, _aten.masked_select, _aten._unique2, _aten.unique_dim,
    _aten.unique_consecutive, _aten.equal, _aten.allclose, _aten.is_nonzero, _aten.bincount, _aten.argwhere,
    _aten.histc,  # with min == max (the default) it reads the data's range back
}  # fmt: skip


def _is_bool_index(func, args) -> bool:
    """``x[mask]`` / ``x[mask] = v``: a boolean index becomes ``nonzero`` (the result's size depends on the data)."""
    if func.overloadpacket not in (_aten.index, _aten.index_put, _aten.index_put_, _aten._index_put_impl_):
        return False
    indices = args[1] if len(args) > 1 else []
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or [])


def _why(func, args, kwargs) -> str | None:
    packet = func.overloadpacket
    if packet in {op.overloadpacket if hasattr(op, "overloadpacket") else op for op in SYNCING_OPS}:
        return packet.__name__
    if (
        packet is _aten.repeat_interleave
        and kwargs.get("output_size") is None
        and len(args) >= 1
        and isinstance(args[0], torch.Tensor)
    ):
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        if isinstance(repeats, torch.Tensor) or args[0].dtype in (torch.int64, torch.int32):
            return "repeat_interleave without output_size"
    if _is_bool_index(func, args):
        return f"{packet.__name__} with a boolean index"
    if packet in (_aten._to_copy, _aten.copy_) and len(args) >= 1 and isinstance(args[0], torch.Tensor):
        target = kwargs.get("device") if packet is _aten._to_copy else args[0].device
        source = args[0].device if packet is _aten._to_copy else (args[1].device if isinstance(args[1], torch.Tensor) else None)
        if target is not None and source is not None and torch.device(target) != source:
            return f"{packet.__name__} between {source.type} and {torch.device(target).type}"
    return None


def _where() -> str:
    """The innermost line of this package on the stack (else the innermost line outside torch)."""
    here = str(Path(__file__).resolve())
    frames = [f for f in traceback.extract_stack() if str(Path(f.filename).resolve()) != here or f.name == "step"]
    ours = [f for f in frames if f.filename.startswith(PACKAGE)]
    frame = ours[-1] if ours else next((f for f in reversed(frames) if "/torch/" not in f.filename), frames[-1])
    return f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"


def _target_device(args, kwargs) -> torch.device | None:
    """The device a ``Tensor.to(...)`` call names explicitly (a device, a string, or another tensor's), else None."""
    for value in [*args[1:], kwargs.get("device"), kwargs.get("other")]:
        if isinstance(value, (str, torch.device)) and not isinstance(value, torch.dtype):
            return torch.device(value)
        if isinstance(value, torch.Tensor):
            return value.device
    return None


def _why_transfer(func, args, kwargs) -> str | None:
    """Host ↔ device traffic asked for at the Python level, which the dispatcher does not show on a CPU:
    reading a tensor into Python, making one from host data, or moving one to a named device. On a GPU
    each is a copy that waits for the stream (PyTorch synchronises after a blocking copy)."""
    if func in (torch.Tensor.tolist, torch.Tensor.numpy):
        return f"Tensor.{func.__name__}() (a read to the host)"
    if func in (torch.tensor, torch.as_tensor) and args and not isinstance(args[0], torch.Tensor):
        return f"torch.{func.__name__}(host data) (a copy to the device)"
    if func in (torch.Tensor.cpu, torch.Tensor.cuda):
        return f"Tensor.{func.__name__}()"
    if func is torch.Tensor.to:
        target = _target_device(args, kwargs)
        source = args[0].device if args and isinstance(args[0], torch.Tensor) else None
        # on a CPU every device is the same: an explicit one is what would move data on a GPU
        if target is not None and (target != source or target.type == "cpu"):
            return "Tensor.to(device)"
    return None


class _TransferRecorder(TorchFunctionMode):
    def __init__(self, syncs: Counter) -> None:
        super().__init__()
        self.syncs = syncs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        why = _why_transfer(func, args, kwargs)
        if why is not None:
            self.syncs[(why, _where())] += 1
        return func(*args, **kwargs)


class SyncRecorder(TorchDispatchMode):
    """Records each op that would make the host wait for a GPU, with where it was asked for: ops that read
    device memory on the host (dispatcher level) and host ↔ device copies asked for in Python (a
    ``TorchFunctionMode`` entered with it)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: Counter[tuple[str, str]] = Counter()
        self._transfers = _TransferRecorder(self.syncs)

    def __enter__(self):
        self._transfers.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._transfers.__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        why = _why(func, args, kwargs)
        if why is not None:
            self.syncs[(why, _where())] += 1
        return func(*args, **kwargs)


def build(name: str, device: torch.device):
    """A small model of each family and a batch: ``(model, batch)``."""
    from terratorch_specmae.backbones import build_mae, build_ssmae

    if name == "s2mae":
        model = build_mae("tiny", img_size=32, mask_ratio=0.9)
        batch = torch.rand(4, 12, 32, 32) * 3000
    elif name == "sigmae":  # as SpectralMAETask runs it: standardised batches, the datamodule's statistics set
        model = build_mae("tiny", family="sigmae", img_size=32, patch_size=8, mask_ratio=0.75)
        model.set_masking_normalization([1500.0] * 12, [500.0] * 12)
        batch = torch.randn(4, 12, 32, 32)
    else:
        bands = [f"{400 + 10 * i}nm" for i in range(49)] + ["DSM"]
        model = build_ssmae(True, bands=bands, spectral_masking="redundant_spectra")
        batch = torch.randn(8, len(bands), 7, 7)
    return model.to(device).train(), batch.to(device)


def step_syncs(name: str, device: torch.device, steps: int = 2) -> tuple[Counter, int | None]:
    """Ops that sync during ``steps`` training steps (the first is left out: lazy set-up), and CUDA's own count."""
    model, batch = build(name, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as the configs (fused: true)

    def step() -> None:
        loss = model(batch).loss["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    recorder = SyncRecorder()
    cuda_count = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.set_sync_debug_mode("warn")
        try:
            with recorder:
                for _ in range(steps):
                    step()
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode(0)
    if device.type == "cuda":
        cuda_count = sum("synchroniz" in str(w.message) for w in caught)
    return recorder.syncs, cuda_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--models", nargs="+", default=["s2mae", "sigmae", "ssmae"], choices=["s2mae", "sigmae", "ssmae"]
    )
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    device = torch.device(args.device)
    report = {}
    for name in args.models:
        syncs, cuda_count = step_syncs(name, device, args.steps)
        report[name] = {"ops": [{"op": op, "where": where, "count": n} for (op, where), n in syncs.most_common()],
                        "cuda_sync_warnings": cuda_count}  # fmt: skip
        total = sum(syncs.values())
        cuda = "" if cuda_count is None else f", CUDA's sync debug mode: {cuda_count}"
        print(f"{name}: {total} syncing ops in {args.steps} training steps{cuda}")
        for (op, where), n in syncs.most_common():
            print(f"  {n:>4} × {op:<40} {where}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
