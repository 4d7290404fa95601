"""LanguageModelModule end to end on a tiny corpus: train, sample, checkpoint, eval, generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from bigmodel.eval import evaluate
from bigmodel.generate import generate, load_language_model
from bigmodel.models.optim import decay_param_groups
from bigmodel.nets.gpt import GPT
from bigmodel.train import train
from bigmodel.utils.errors import ConfigError
from tests.conftest import QUIET, run_cli

CORPUS = "".join(f"ROMEO:\nLine {i} of a play, my lord.\n\n" for i in range(300))


def tiny_cfg(make_cfg, tmp_path: Path, *extra: str):
    corpus = tmp_path / "play.txt"
    corpus.write_text(CORPUS)
    cfg = make_cfg(
        [
            "experiment=text_file_bpe_gpt",
            *QUIET,
            f"data.path={corpus}",
            "data.tokenizer.kind=char",
            "data.block_size=16",
            "data.val_windows=8",
            "data.batch_size=4",
            "model.net.n_layer=1",
            "model.net.n_embd=16",
            "model.net.n_head=2",
            "model.sample.max_new_tokens=5",
            "model.sample.prompt=ROMEO:",
            "model.scheduler.scheduler.num_warmup_steps=1",
            "trainer.max_steps=4",
            "trainer.val_check_interval=2",
            "trainer.accelerator=cpu",
            "callbacks.early_stopping=null",
            *extra,
        ]
    )
    return cfg


def tiny_run(make_cfg, tmp_path: Path, *extra: str):
    cfg = tiny_cfg(make_cfg, tmp_path, *extra)
    return cfg, train(cfg)


def test_train_eval_generate_round_trip(make_cfg, tmp_path):
    cfg, metrics = tiny_run(make_cfg, tmp_path)
    for key in ("val/loss", "val/ppl", "val/bpc", "val/loss_best", "test/loss", "test/bpc"):
        assert key in metrics, key
    assert abs(float(metrics["val/ppl"]) - torch.tensor(float(metrics["val/loss"])).exp().item()) < 1e-3
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert saved["best_ckpt_path"] and saved["global_step"] == 4
    # run.params is counted after configure_model built the net (0 before), and re-logged
    hparams = yaml.safe_load((Path(cfg.paths.output_dir) / "csv" / "hparams.yaml").read_text())
    assert hparams["run"]["params"]["total"] == hparams["run"]["params"]["trainable"] > 1000
    assert hparams["run"]["output_dir"] == str(cfg.paths.output_dir)  # the rest of run.* is kept
    run_tok = Path(cfg.paths.output_dir) / "tokenizer.json"
    assert json.loads(run_tok.read_text())["chars"] == "".join(sorted(set(CORPUS)))

    ckpt = torch.load(saved["last_ckpt_path"], weights_only=True)  # plain data only
    assert ckpt["hyper_parameters"]["net"]["vocab_size"] == len(set(CORPUS))  # filled from the data
    assert ckpt["hyper_parameters"]["net"]["block_size"] == 16
    assert ckpt["tokenizer"]["kind"] == "char"

    model = load_language_model(saved["last_ckpt_path"])
    a = model.generate_text("ROMEO:", 30, temperature=1.0, top_k=None, seed=7)
    b = model.generate_text("ROMEO:", 30, temperature=1.0, top_k=None, seed=7)
    c = model.generate_text("ROMEO:", 30, temperature=1.0, top_k=None, seed=8)
    assert a == b and a != c and a.startswith("ROMEO:") and len(a) == 36
    with pytest.raises(ConfigError, match=r"prompt='JULIET~'.*\['I', 'J', 'T', 'U', '~'\]"):
        model.generate_text("JULIET~", 5)

    gcfg = make_cfg(
        [f"ckpt_path={saved['last_ckpt_path']}", "prompt=ROMEO:", "max_new_tokens=20"], "generate"
    )
    texts = generate(gcfg)
    assert texts[0] == model.generate_text("ROMEO:", 20, 0.8, 50, seed=gcfg.seed)
    assert (Path(gcfg.paths.output_dir) / "samples.txt").read_text().startswith(texts[0])

    # the real entry point (Hydra CLI), as `make generate` runs it
    proc = run_cli(
        "bigmodel.generate", f"ckpt_path={saved['last_ckpt_path']}", "prompt=ROMEO:", "max_new_tokens=20",
        f"paths.log_dir={tmp_path / 'logs'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert texts[0] in proc.stdout

    ecfg = make_cfg([f"ckpt_path={saved['best_ckpt_path']}", *QUIET[:1], "trainer.accelerator=cpu"], "eval")
    emetrics = evaluate(ecfg)
    assert abs(float(emetrics["test/loss"]) - float(metrics["test/loss"])) < 1e-4


def test_validation_sample_is_exposed_for_callbacks(make_cfg, tmp_path):
    from lightning import Callback

    seen = []

    class Grab(Callback):
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                seen.append(pl_module.last_sample)

    import hydra
    from lightning import Trainer
    from lightning.pytorch.loggers import TensorBoardLogger

    cfg = tiny_cfg(make_cfg, tmp_path)
    assert cfg.callbacks.media_text.prompts == ["ROMEO:"]  # the experiment's prompt, via model.sample.prompt

    dm = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, _recursive_=False)
    media = hydra.utils.instantiate(cfg.callbacks.media_text, max_new_tokens=7)
    trainer = Trainer(max_steps=2, val_check_interval=2, callbacks=[Grab(), media],
                      logger=TensorBoardLogger(tmp_path / "tb"), enable_checkpointing=False,
                      enable_progress_bar=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, dm)
    assert seen == [module.last_sample] and seen[0][0] == 2 and seen[0][1].startswith("ROMEO:")
    # the media_text callback got its text from generate_sample: the continuation only, 7 chars
    [(step, _, prompt, sample)] = media.rows
    assert (step, prompt) == (2, "ROMEO:") and len(sample) == 7 and not sample.startswith("ROMEO:")
    torch.manual_seed(3)
    again = module.generate_sample("ROMEO:", 7)
    torch.manual_seed(3)
    assert module.generate_sample("ROMEO:", 7) == again and len(module.generate_sample("", 4)) == 4


def test_block_size_larger_than_position_table_fails_before_training(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"data.block_size=16 is larger than .*model.net.block_size=8"):
        tiny_run(make_cfg, tmp_path, "model.net.block_size=8")


def test_no_weight_decay_on_biases_and_norms():
    net = GPT(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    decay, no_decay = decay_param_groups(net, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    total = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert total == sum(p.numel() for p in net.parameters())  # tied lm_head/wte counted once


@pytest.mark.slow  # 27 s of compiling; tests/models/test_compile.py keeps a compiled run's plain checkpoint keys in make test
def test_compiled_lm_trains_and_checkpoint_keys_stay_plain(make_cfg, tmp_path):
    """model.compile=true compiles the GPT in configure_model; the checkpoint has no ``_orig_mod.`` keys."""
    cfg, metrics = tiny_run(make_cfg, tmp_path, "model.compile=true", "trainer.max_steps=2")
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert saved["global_step"] == 2 and torch.isfinite(torch.tensor(float(metrics["val/loss"])))
    ckpt = torch.load(saved["last_ckpt_path"], weights_only=True)
    assert ckpt["hyper_parameters"]["compile"] is True
    assert ckpt["state_dict"] and not [k for k in ckpt["state_dict"] if "_orig_mod" in k]
    model = load_language_model(saved["last_ckpt_path"])  # loads into a plain (uncompiled) module
    assert model.generate_text("ROMEO:", 3, seed=1).startswith("ROMEO:")
