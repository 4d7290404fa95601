"""Sample text from a trained language model: ``python -m bigmodel.generate ckpt_path=FILE prompt="ROMEO:"
max_new_tokens=200 temperature=0.8 top_k=50 seed=1`` (also ``bigmodel-generate``, ``make generate``).

The net's shape and the tokenizer come from the checkpoint, so neither the corpus nor the experiment
config is needed. The text goes to stdout and to ``<run dir>/samples.txt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from bigmodel.models.language_model import LanguageModelModule
from bigmodel.tokenizers import tokenizer_from_dict
from bigmodel.utils.cli import entry_point
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.run import load_checkpoint, resolve_ckpt_path

log = logging.getLogger(__name__)


def load_language_model(ckpt_path: str | Path, device: str = "cpu") -> LanguageModelModule:
    """Rebuild a :class:`LanguageModelModule` (net + tokenizer) from a checkpoint, in eval mode.

    Raises:
        ConfigError: the checkpoint is not a language model's, or holds no tokenizer.
    """
    ckpt = load_checkpoint(ckpt_path)
    hp = ckpt.get("hyper_parameters", {})
    if "net" not in hp or "sample" not in hp:
        raise ConfigError(
            f"{ckpt_path} is not a language-model checkpoint (no LanguageModelModule hyper-parameters)."
        )
    if not ckpt.get("tokenizer"):
        raise ConfigError(f"{ckpt_path} holds no tokenizer; it was not written by a bigmodel text run.")
    module = LanguageModelModule(**hp)
    module.configure_model()
    module.load_state_dict(ckpt["state_dict"])
    module.tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    return module.to(device).eval()


def generate(cfg: DictConfig) -> list[str]:
    """Generate ``cfg.num_samples`` texts; returns them (prompt included).

    Raises:
        ConfigError: no/missing checkpoint, ``temperature <= 0``, ``max_new_tokens < 0``, or prompt
            characters outside a char vocabulary (listed).
    """
    if cfg.get("ckpt_path") in (None, "", "???"):
        raise ConfigError(
            "bigmodel.generate needs ckpt_path=<file.ckpt> (or ckpt_path=last or ckpt_path=best, with experiment_name=NAME)."
        )
    if cfg.temperature <= 0 or cfg.max_new_tokens < 0:
        raise ConfigError(
            f"temperature={cfg.temperature} must be > 0 and max_new_tokens={cfg.max_new_tokens} >= 0."
        )
    path = resolve_ckpt_path(str(cfg.ckpt_path), cfg.paths.log_dir, cfg.get("experiment_name") or "")
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
