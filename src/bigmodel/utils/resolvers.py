"""OmegaConf resolvers used by ``configs/``. Imported by every entry point before Hydra composes.

- ``${uid:}``: a short random id, the same for the whole process (cached), so that two runs
  started in the same second get different run directories.
- ``${project_root:}``: the folder that holds ``configs/`` (the repository root for an editable install).
- ``${prod:a,b,...}``: the product of integers, e.g. a flattened input size ``C*H*W``.
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path

from omegaconf import OmegaConf

# src/bigmodel/utils/resolvers.py -> repository root. The package is installed editable (src layout),
# so configs/ sits at a fixed place relative to this file; no search upwards, no sys.path changes.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = PROJECT_ROOT / "configs"

_UID = secrets.token_hex(3)


def register() -> None:
    """Register the resolvers (idempotent)."""
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: _UID, use_cache=True)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("prod"):
        OmegaConf.register_new_resolver("prod", lambda *xs: math.prod(int(x) for x in xs))


register()
