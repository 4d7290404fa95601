"""Sample text from a trained language model: ``python -m bigmodel.generate ckpt_path=FILE prompt="ROMEO:"
max_new_tokens=200 temperature=0.8 top_k=50 seed=1`` (also ``bigmodel-generate``, ``make generate``).

The net's shape and the tokenizer come from the checkpoint, so neither the corpus nor the experiment
config is needed. The text goes to stdout and to ``<run dir>/samples.txt``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from bigmodel.utils.cli import entry_point
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import entry_ckpt_path

if TYPE_CHECKING:
    from bigmodel.models.language_model import LanguageModelModule

log = logging.getLogger(__name__)


def load_language_model(ckpt_path: str | Path, device: str = "cpu") -> LanguageModelModule:
    """A :class:`LanguageModelModule` (net + tokenizer) from a checkpoint, in eval mode on ``device``,
    through the shared inference loader (:func:`bigmodel.inference.loader.load_model`).

    Raises:
        ConfigError: the checkpoint is not a language model's, or holds no tokenizer.
    """
    from bigmodel.inference.loader import load_model

    return load_model(ckpt_path, kinds=("lm",), entry="generate").module.to(device)


def generate(cfg: DictConfig) -> list[str]:
    """Generate ``cfg.num_samples`` texts; returns them (prompt included).

    Raises:
        ConfigError: no/missing checkpoint, ``temperature <= 0``, ``max_new_tokens < 0``, or prompt
            characters outside a char vocabulary (listed).
    """
    if cfg.temperature <= 0 or cfg.max_new_tokens < 0:
        raise ConfigError(
            f"temperature={cfg.temperature} must be > 0 and max_new_tokens={cfg.max_new_tokens} >= 0."
        )
    path = entry_ckpt_path(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.get("experiment_name"), "generate")
    import torch  # after the checkpoint check: a wrong ckpt_path fails without torch's import time

    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    module = load_language_model(path, device)
    top_k = int(cfg.top_k) if cfg.get("top_k") else None
    texts = [
        module.generate_text(
            str(cfg.prompt), int(cfg.max_new_tokens), float(cfg.temperature), top_k, cfg.seed + i
        )
        for i in range(int(cfg.num_samples))
    ]
    out = Path(cfg.paths.output_dir) / "samples.txt"
    out.write_text("\n\n-----\n\n".join(texts) + "\n", encoding="utf-8")
    for i, text in enumerate(texts):
        print(f"----- sample {i} (seed {cfg.seed + i}) -----\n{text}", flush=True)
    log.info("Samples written to %s", out)
    return texts


@entry_point("generate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    generate(cfg)


if __name__ == "__main__":
    main()
