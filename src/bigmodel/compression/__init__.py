"""Model compression after (or during) training: post-training quantization and casting
(:mod:`.quantize`), magnitude pruning (:mod:`.pruning`), and size / latency measurement
(:mod:`.measure`). ``bigmodel.compress`` is the entry point; :func:`prepare_for_checkpoint` is what the
shared checkpoint loader (and ``bigmodel.eval``) call so a compressed checkpoint loads like any other."""

from bigmodel.compression.quantize import METHODS, apply_method, prepare_for_checkpoint

__all__ = ["METHODS", "apply_method", "prepare_for_checkpoint"]
