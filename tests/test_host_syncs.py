"""The pretraining step keeps a GPU fed: no op in forward, backward or the fused AdamW update makes the host
wait for the device (``.item()``, ``if tensor``, ``nonzero``, boolean indexing, ``unique``, a tensor made
from host data or moved to the device each step, ...), except the input check (NaN / inf / nodata → a clear
error), once per encoder forward. SIGMAE runs with the datamodule's statistics set, as under the task. Found with the dispatch-mode
recorder of ``benchmarks/host_syncs.py`` on the CPU: the ops are the ones a GPU would run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "host_syncs.py"
spec = importlib.util.spec_from_file_location("host_syncs", SCRIPT)
host_syncs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host_syncs)


@pytest.mark.parametrize(("name", "encoders"), [("s2mae", 1), ("sigmae", 1), ("ssmae", 2)])
def test_a_training_step_syncs_only_in_the_input_check(name, encoders):
    syncs, _ = host_syncs.step_syncs(name, torch.device("cpu"), steps=2)
    where = {(op, place.split(":")[0], place.split()[-1]) for op, place in syncs}
    assert where == {("_local_scalar_dense", "encoder.py", "check_input")}, syncs
    assert sum(syncs.values()) == 2 * encoders


def test_the_recorder_sees_what_would_sync_a_gpu():
    x, counts = torch.randn(4, 5), torch.tensor([1, 2])
    with host_syncs.SyncRecorder() as recorder:
        x[x > 0] = 0.0  # boolean index_put
        x[x.abs() > 1]  # boolean index
        float(x.sum())  # .item()
        torch.unique(x)
        x.nonzero()
        torch.repeat_interleave(counts)
        x.sum(dim=0).tolist()
        torch.as_tensor([1.0, 2.0], device=x.device)
        counts.to(x.device)
        x + 1  # none of these
        x.to(torch.bfloat16)
        torch.zeros(3, device=x.device)
    found = {op for op, _ in recorder.syncs}
    assert found == {
        "index_put_ with a boolean index", "index with a boolean index", "_local_scalar_dense", "_unique2",
        "nonzero", "repeat_interleave without output_size", "Tensor.tolist() (a read to the host)",
        "torch.as_tensor(host data) (a copy to the device)", "Tensor.to(device)",
    }  # fmt: skip
    assert all(where.startswith("test_host_syncs.py:") for _, where in recorder.syncs)
