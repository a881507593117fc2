from terratorch_specmae.datamodules.benchmarks import (
    BigEarthNetBenchmarkDataModule,
    EuroSATBenchmarkDataModule,
    OSCDBenchmarkDataModule,
)
from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule
from terratorch_specmae.datamodules.multilabel_chips import MultiLabelChipDataModule
from terratorch_specmae.datamodules.pretraining_corpora import (
    BigEarthNetPretrainDataModule,
    FMoWSentinelPretrainDataModule,
    SSL4EOS12PretrainDataModule,
)
from terratorch_specmae.datamodules.scene_tiles import SceneTilesDataModule
from terratorch_specmae.datamodules.streaming import StreamingCorpusDataModule

__all__ = [
    "BigEarthNetBenchmarkDataModule",
    "BigEarthNetPretrainDataModule",
    "EuroSATBenchmarkDataModule",
    "FMoWSentinelPretrainDataModule",
    "HSIPixelDataModule",
    "MultiLabelChipDataModule",
    "OSCDBenchmarkDataModule",
    "SSL4EOS12PretrainDataModule",
    "SceneTilesDataModule",
    "StreamingCorpusDataModule",
]
