"""LanguageModelModule.predict_step: a continuation per prompt, reproducible with the seed, through the
shared loader from a checkpoint saved with its tokenizer (no corpus needed)."""

from __future__ import annotations

import pytest
import torch

from bigmodel.inference.loader import load_model
from bigmodel.models.language_model import LanguageModelModule
from bigmodel.tokenizers import CharTokenizer


def _tiny_lm_ckpt(path):
    tok = CharTokenizer(sorted(set("abcdefgh ROMEO:")))
    net = {"_target_": "bigmodel.nets.gpt.GPT", "vocab_size": tok.vocab_size, "block_size": 16,
           "n_layer": 1, "n_head": 2, "n_embd": 16}  # fmt: skip
    opt = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}
    module = LanguageModelModule(net, opt, sample={"max_new_tokens": 0})
    module.configure_model()
    module.tokenizer = tok
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "tokenizer": tok.to_dict(),
            "bigmodel": {"config": {"model": {"_target_": "bigmodel.models.language_model.LanguageModelModule"},
                                    "data": {"_target_": "bigmodel.data.text.TextDataModule"}, "task_name": "tiny_lm"}}}  # fmt: skip
    torch.save(ckpt, path)
    return path


def test_lm_predict_step_continues_each_prompt(tmp_path):
    loaded = load_model(_tiny_lm_ckpt(tmp_path / "lm.ckpt"))
    assert loaded.kind == "lm" and loaded.class_names is None
    lm = loaded.module
    lm.predict_settings = {"max_new_tokens": 7, "temperature": 1.0, "top_k": None, "seed": 3}
    prompts = [loaded.pre.load_text("ROMEO:"), loaded.pre.load_text("abc")]
    out = lm.predict_step(loaded.pre.collate(prompts), 0)
    assert len(out) == 2 and all(len(t) == 7 for t in out)
    assert lm.predict_step(prompts, 0) == out  # same seed, same text
    assert lm.predict_step(prompts, 1) != out  # another batch index draws other samples


def test_entry_points_share_the_loader_and_refuse_the_wrong_kind(tmp_path, digits_ckpt, make_cfg):
    """generate / explain / export go through the shared loader, which names the checkpoint's kind."""
    from bigmodel.attribution.inputs import load
    from bigmodel.export import export
    from bigmodel.generate import load_language_model
    from bigmodel.utils.errors import ConfigError

    lm_path = _tiny_lm_ckpt(tmp_path / "lm.ckpt")
    lm = load_language_model(lm_path)
    assert isinstance(lm, LanguageModelModule) and not lm.training
    assert lm.generate_text("ROMEO:", 4, seed=1).startswith("ROMEO:")
    with pytest.raises(ConfigError, match=r"bigmodel.generate takes language models, but .* an image model"):
        load_language_model(digits_ckpt)
    with pytest.raises(
        ConfigError, match=r"bigmodel.explain takes image or audio or text models, .* a language"
    ):
        load(str(lm_path), str(tmp_path), None, str(tmp_path), str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=r"bigmodel.explain needs a checkpoint: pass ckpt_path="):
        load("", str(tmp_path), None, str(tmp_path), str(tmp_path / "cache"))
    # export takes language models now (issue #12); with no corpus to read, it verifies on verify_inputs
    cfg = make_cfg([f"ckpt_path={lm_path}", "format=onnx"], config_name="export")
    with pytest.raises(ConfigError, match=r"(?s)Cannot read the training run's test split .* verify_inputs="):
        export(cfg)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\nabc\n")
    cfg = make_cfg([f"ckpt_path={lm_path}", "format=onnx", f"verify_inputs={prompts}"], config_name="export")
    check = export(cfg)["verification"]
    assert check["passed"] and check["lengths"] == [1, 3, 6]  # "abc", "ROMEO:" and its prefixes 1 and 3
