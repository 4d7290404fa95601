"""Nets raise plain ValueError/TypeError naming the argument; the modules that build them add the config path."""

from __future__ import annotations

import pytest

from bigmodel.models.build import instantiate_part
from bigmodel.models.classification import ClassificationModule
from bigmodel.models.language_model import LanguageModelModule
from bigmodel.utils.errors import ConfigError

OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}
VIT = {
    "_target_": "bigmodel.nets.vit.ViT",
    "in_channels": 1,
    "num_classes": 10,
    "image_size": 8,
    "patch_size": 4,
}
GPT = {
    "_target_": "bigmodel.nets.gpt.GPT",
    "vocab_size": 11,
    "block_size": 8,
    "n_layer": 1,
    "n_head": 3,
    "n_embd": 8,
}


def test_a_bad_value_gets_the_config_path():
    with pytest.raises(ConfigError, match=r"^model\.net: pooling='max' is not one of: cls, mean\.$"):
        ClassificationModule(net={**VIT, "pooling": "max"}, optimizer=OPT, num_classes=10)


def test_an_unknown_argument_gets_the_config_path():
    # the old name of the option: a TypeError from the constructor
    with pytest.raises(ConfigError, match=r"^model\.net: .*unexpected keyword argument 'pool'"):
        ClassificationModule(net={**VIT, "pool": "cls"}, optimizer=OPT, num_classes=10)


def test_frontend_errors_name_model_frontend():
    fe = {"_target_": "bigmodel.nets.audio_frontend.LogMelFrontend", "sample_rate_hz": 8000, "n_mels": 0}
    with pytest.raises(ConfigError, match=r"^model\.frontend: n_mels=0 must be >= 1"):
        ClassificationModule(net=VIT, optimizer=OPT, num_classes=10, frontend=fe)


def test_language_model_builds_its_net_in_configure_model_with_the_path():
    module = LanguageModelModule(net=GPT, optimizer=OPT)
    with pytest.raises(ConfigError, match=r"^model\.net: n_embd=8 must be divisible by n_head=3\.$"):
        module.configure_model()


def test_other_errors_pass_through():
    with pytest.raises(Exception) as e:  # an unimportable target is Hydra's own error, not a bad argument
        instantiate_part({"_target_": "bigmodel.nets.nope.Net"}, "model.net")
    assert not isinstance(e.value, ConfigError)
