"""Adapters to other benchmark harnesses (the top layer: they import the package, nothing imports them).

* :mod:`terratorch_specmae.integrations.torchgeo_bench` — our encoders as a torchgeo-bench
  ``BenchModel`` (``torchgeo-bench`` needs Python >= 3.12; imported only when the class is used).

GEO-Bench-2 through terratorch-iterate needs no code here (``configs/benchmarks/geobench2_*.yaml``
and the ``configs/benchmarks/specmae_plugin`` folder); PANGAEA's encoder wrapper lives in
``docs/pangaea/``, to be copied into a PANGAEA checkout.
"""
