from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule
from terratorch_specmae.datamodules.multilabel_chips import MultiLabelChipDataModule
from terratorch_specmae.datamodules.scene_tiles import SceneTilesDataModule

__all__ = ["HSIPixelDataModule", "MultiLabelChipDataModule", "SceneTilesDataModule"]
