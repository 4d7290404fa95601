"""bigmodel: a Lightning + Hydra application for training big deep-learning models on text, vision
and audio tasks. Entry points: ``python -m bigmodel.train`` and ``python -m bigmodel.eval``."""

__version__ = "0.1.0"
