from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule
from terratorch_specmae.datamodules.multilabel_chips import MultiLabelChipDataModule

__all__ = ["HSIPixelDataModule", "MultiLabelChipDataModule"]
