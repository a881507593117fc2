from terratorch_specmae.tasks.multilabel import MultiLabelTask
from terratorch_specmae.tasks.pixel_classification import PixelClassificationTask
from terratorch_specmae.tasks.pretrain import SpectralMAETask
from terratorch_specmae.tasks.segmentation import SegmentationTask

__all__ = ["MultiLabelTask", "PixelClassificationTask", "SegmentationTask", "SpectralMAETask"]
