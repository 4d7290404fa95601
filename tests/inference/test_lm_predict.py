"""LanguageModelModule.predict_step: a continuation per prompt, reproducible with the seed, through the
shared loader from a checkpoint saved with its tokenizer (no corpus needed)."""

from __future__ import annotations

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
