from terratorch_specmae.tasks.multilabel import MultiLabelTask
from terratorch_specmae.tasks.pixel_classification import PixelClassificationTask
from terratorch_specmae.tasks.pretrain import SpectralMAETask

__all__ = ["MultiLabelTask", "PixelClassificationTask", "SpectralMAETask"]
