"""Building a LightningModule's parts (net, frontend) from their Hydra configs.

Nets are plain ``nn.Module``s used outside Hydra too, so their errors name the argument
(``pooling='max' is not one of: cls, mean.``), never a config path. Only the caller knows where the
config sits, so it adds the path here: ``model.net: pooling='max' is not one of: cls, mean.``
"""

from __future__ import annotations

from typing import Any

import hydra
from hydra.errors import InstantiationException
from torch import nn

from bigmodel.utils.errors import ConfigError


def instantiate_part(cfg: Any, key: str) -> nn.Module:
    """``hydra.utils.instantiate(cfg)``, with the part's bad-argument errors prefixed by its config path.

    Args:
        cfg: Hydra config (``_target_`` + kwargs) of the part.
        key: where that config sits, e.g. ``model.net`` or ``model.frontend``.

    Raises:
        ConfigError: the constructor raised ``ValueError`` or ``TypeError`` (a bad value, an unknown or
            missing argument); the message is ``"<key>: <the constructor's message>"``.
    """
    try:
        return hydra.utils.instantiate(cfg)
    except InstantiationException as e:
        # Hydra wraps what the constructor raised ("Error in call to target ..."); report the cause itself
        cause = e.__cause__
        if isinstance(cause, ValueError | TypeError):
            raise ConfigError(f"{key}: {cause}") from cause
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{key}: {e}") from e
