"""GPT size presets (configs/net/gpt_*.yaml, gpt2_*.yaml) give the textbook parameter counts, built on the meta
device so that even the 1.3B model costs no memory."""

from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import open_dict

EXPECTED = {  # with the GPT-2 vocabulary of 50,257 tokens
    "gpt2_small": (1024, 124_439_808),  # GPT-2 small, "124M"
    "gpt2_medium": (1024, 354_823_168),  # GPT-2 medium, "350M"
    "gpt_1b3": (2048, 1_315_723_264),  # GPT-3 XL shape, "1.3B"
}


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_parameter_counts_on_meta(make_cfg, preset):
    cfg = make_cfg(["experiment=shakespeare_char_gpt", f"net={preset}"])
    assert cfg.model.net.block_size == EXPECTED[preset][0]
    with open_dict(cfg):
        cfg.model.net.vocab_size = 50257
    with torch.device("meta"):
        net = hydra.utils.instantiate(cfg.model.net)
    assert all(p.is_meta for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) == EXPECTED[preset][1]


def test_nano_preset_is_cpu_sized(make_cfg):
    cfg = make_cfg(["experiment=shakespeare_char_gpt"])
    with open_dict(cfg):
        cfg.model.net.vocab_size, cfg.model.net.block_size = 65, cfg.data.block_size
    with torch.device("meta"):
        net = hydra.utils.instantiate(cfg.model.net)
    assert sum(p.numel() for p in net.parameters()) == 809_856  # 0.8M, like nanoGPT's CPU example
