"""Inference after training, shared by ``predict``, ``export`` and ``serve``: one checkpoint loader
(:mod:`.loader`), the eval-time preprocessing rebuilt from the checkpoint (:mod:`.preprocess`), input
collection (:mod:`.inputs`), prediction rows (:mod:`.rows`) and the torch / ONNX Runtime backends
(:mod:`.backends`)."""
