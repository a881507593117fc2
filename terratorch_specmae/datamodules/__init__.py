from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule

__all__ = ["HSIPixelDataModule"]
