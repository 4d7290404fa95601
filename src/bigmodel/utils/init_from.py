"""Initialise a net from another run's checkpoint (pretrain, then fine-tune).

A net config may carry three extra keys, which the LightningModule removes before building the net
(so nets know nothing of checkpoints) and then applies with :func:`init_net_from`:

- ``init_from``: a Lightning ``.ckpt`` of any run, or a plain ``state_dict`` file (``torch.save``).
- ``init_strict``: every weight of the net must be filled (default ``true``).
- ``init_prefix_map``: ``{checkpoint key prefix: net key prefix}``; only checkpoint keys starting with a
  listed prefix are used, renamed. Default ``{"net.": ""}``, the prefix our LightningModules give their net.
  E.g. a GPT warms a text encoder with ``{"net.wte.": "wte.", "net.transformer.": "encoder."}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bigmodel.utils.errors import ConfigError

log = logging.getLogger(__name__)

INIT_KEYS = ("init_from", "init_strict", "init_prefix_map")
DEFAULT_PREFIX_MAP = {"net.": ""}


def pop_init_keys(net_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(net config without the init keys, the init settings)``; the settings are empty without ``init_from``."""
    net_cfg = dict(net_cfg)
    init = {k: net_cfg.pop(k) for k in INIT_KEYS if k in net_cfg}
    return net_cfg, init if init.get("init_from") else {}


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in ``path``: a Lightning checkpoint's ``state_dict`` or a plain state dict.

    Raises:
        ConfigError: the file is missing or holds no tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"model.net.init_from={path}: no such file. Give a checkpoint of an earlier run, e.g. "
            "logs/<experiment>/runs/<run>/checkpoints/last.ckpt."
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.net.init_from={path} holds no state_dict of tensors.")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def init_net_from(
    net: nn.Module,
    init_from: str | Path,
    init_strict: bool = True,
    init_prefix_map: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Copy the weights of ``init_from`` into ``net`` (in place), renamed by ``init_prefix_map``.

    Returns:
        ``{"loaded": [...], "missing": [...], "unexpected": [...]}`` net keys: loaded, left at their
        initialisation (no checkpoint key for them), and checkpoint keys (renamed) the net lacks.

    Raises:
        ConfigError: shapes that differ (listing each key with both shapes), no key matching the prefix
            map, or under ``init_strict`` any missing or unexpected key (listed).
    """
    prefix_map = dict(init_prefix_map or DEFAULT_PREFIX_MAP)
    source = load_state_dict_file(init_from)
    mapped: dict[str, torch.Tensor] = {}
    # longest prefix first, so {"net.": "", "net.head.": "old_head."} picks the more specific rule
    for key, value in source.items():
        for src in sorted(prefix_map, key=len, reverse=True):
            if key.startswith(src):
                mapped[prefix_map[src] + key[len(src) :]] = value
                break
    if not mapped:
        raise ConfigError(
            f"model.net.init_prefix_map={prefix_map} matches no key of {init_from} (its keys start like "
            f"{sorted({k.split('.')[0] + '.' for k in source})[:8]}); fix the prefixes."
        )
    own = net.state_dict()
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs net {tuple(own[k].shape)}"
           for k, v in mapped.items() if k in own and own[k].shape != v.shape]  # fmt: skip
    if bad:
        raise ConfigError(
            f"model.net.init_from={init_from}: {len(bad)} weight(s) have other shapes than the net: "
            + "; ".join(bad[:20]) + ". Build the net with the pretrained run's sizes (e.g. n_embd, n_layer, "
            "vocab_size), or leave these keys out of model.net.init_prefix_map."
        )  # fmt: skip
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    if init_strict and (missing or unexpected):
        raise ConfigError(
            f"model.net.init_from={init_from} with init_strict=true: missing {missing[:20]}, unexpected "
            f"{unexpected[:20]}. Set model.net.init_strict=false to load the matching weights only, or "
            "fix model.net.init_prefix_map."
        )
    net.load_state_dict({k: v for k, v in mapped.items() if k in own}, strict=False)
    loaded = sorted(set(mapped) & set(own))
    log.info(
        "Initialised %d/%d net weights from %s (%d left at init, %d checkpoint keys unused)",
        len(loaded), len(own), init_from, len(missing), len(unexpected),
    )  # fmt: skip
    return {"loaded": loaded, "missing": missing, "unexpected": unexpected}
