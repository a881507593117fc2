"""A benchmark run on too little data fails clearly instead of "passing" without one optimizer step."""

from types import SimpleNamespace

import pytest
from data.eurosat.data import make_eurosat
from data.oscd.data import make_oscd

from terratorch_specmae.datamodules import EuroSATBenchmarkDataModule, OSCDBenchmarkDataModule
from terratorch_specmae.datamodules.benchmarks import require_training_batches


def datamodule(samples: int, batch_size: int, processes: int | None = None):
    trainer = SimpleNamespace(world_size=processes) if processes else None
    return SimpleNamespace(train_dataset=range(samples), batch_size=batch_size, trainer=trainer)


def test_a_training_split_smaller_than_a_batch_is_an_error():
    require_training_batches(datamodule(2, 2), "EuroSAT")  # one full batch: trains
    with pytest.raises(ValueError, match=r"EuroSAT: the training split has 2 samples, fewer than batch_size 64; "
                                         r"TorchGeo's training loader drops the last incomplete batch.*batch_size <= 2"):
        require_training_batches(datamodule(2, 64), "EuroSAT")
    with pytest.raises(ValueError, match=r"has 6 samples over 4 processes \(2 each\), fewer than batch_size 4"):
        require_training_batches(datamodule(6, 4, processes=4), "BigEarthNet")
    with pytest.raises(ValueError, match="has 0 samples.*the split is empty"):
        require_training_batches(datamodule(0, 1), "OSCD")


@pytest.mark.parametrize("pct", [-0.1, 1.0, 1.5])
def test_oscd_validation_share_must_leave_training_regions(pct):
    with pytest.raises(ValueError, match=rf"OSCD val_split_pct must be in \[0, 1\), got {pct}"):
        OSCDBenchmarkDataModule(val_split_pct=pct)


def test_on_fake_files_in_torchgeos_layout(tmp_path):
    eurosat = EuroSATBenchmarkDataModule(root=str(make_eurosat(tmp_path / "eurosat")), batch_size=10_000)
    with pytest.raises(ValueError, match=r"EuroSAT: the training split has \d+ samples, fewer than batch_size 10000"):
        eurosat.setup("fit")
    oscd = OSCDBenchmarkDataModule(root=str(make_oscd(tmp_path / "oscd")), val_split_pct=0, batch_size=1)
    oscd.setup("fit")
    regions = len(oscd.train_dataset.dataset)
    assert len(oscd.val_dataset) == 0 and len(oscd.train_dataset) == regions  # val_split_pct 0: every region trains
    oscd = OSCDBenchmarkDataModule(root=str(tmp_path / "oscd"), val_split_pct=0.01, batch_size=1)
    oscd.setup("fit")
    assert len(oscd.val_dataset) == 1 and len(oscd.train_dataset) == regions - 1  # asked for some: at least one
