from terratorch_specmae.datamodules.benchmarks import (
    BigEarthNetBenchmarkDataModule,
    EuroSATBenchmarkDataModule,
    OSCDBenchmarkDataModule,
)
from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule
from terratorch_specmae.datamodules.multilabel_chips import MultiLabelChipDataModule
from terratorch_specmae.datamodules.scene_tiles import SceneTilesDataModule

__all__ = [
    "BigEarthNetBenchmarkDataModule",
    "EuroSATBenchmarkDataModule",
    "HSIPixelDataModule",
    "MultiLabelChipDataModule",
    "OSCDBenchmarkDataModule",
    "SceneTilesDataModule",
]
