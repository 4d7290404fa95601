"""``model.compile``: torch.compile of the inner net, shared by the LightningModules."""

from __future__ import annotations

from typing import Any

import torch


def compile_net(net: torch.nn.Module, options: bool | dict[str, Any] | None) -> None:
    """Compile ``net`` in place with ``torch.compile`` when ``options`` is true or a dict of its kwargs.
    In place (``nn.Module.compile``), so parameter names and checkpoints are unchanged; idempotent."""
    if options and getattr(net, "_compiled_call_impl", None) is None:
        net.compile(**(options if isinstance(options, dict) else {}))
