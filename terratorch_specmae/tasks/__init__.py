from terratorch_specmae.tasks.pretrain import SpectralMAETask

__all__ = ["SpectralMAETask"]
