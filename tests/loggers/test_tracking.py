"""End-to-end tracking: real `bigmodel.train` runs on digits, then what the offline W&B run (parsed from its
`run-<id>.wandb`), TensorBoard and CSV recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from bigmodel.utils.resolvers import CONFIG_DIR
from tests.conftest import QUIET, SHARED_DATA, run_cli
from tests.helpers.tb_events import tb_tags
from tests.helpers.wandb_offline import find_runs

SHORT = [
    "trainer.max_epochs=2",
    "++trainer.limit_train_batches=3",
    "++trainer.limit_val_batches=2",
    "++trainer.limit_test_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
]
MEDIA = "callbacks=[default,media_classification,media_vision]"


def train(
    tmp_path: Path,
    *overrides: str,
    env: dict | None = None,
    unset: tuple = (),
    quiet=QUIET,
    timeout: float = 600,
):
    """Run ``python -m bigmodel.train`` with outputs under ``tmp_path/logs`` and W&B's own folders under
    ``tmp_path`` (nothing written to the home directory); returns the CompletedProcess."""
    wandb_dirs = dict(
        WANDB_DIR=str(tmp_path),
        WANDB_DATA_DIR=str(tmp_path / "wandb-data"),
        WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"),
        WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
    )
    flags = [o for o in overrides if o.startswith("-")]  # e.g. -m, which Hydra wants before the overrides
    args = [*flags, f"paths.data_dir={SHARED_DATA}", f"paths.log_dir={tmp_path / 'logs'}", *quiet,
            *[o for o in overrides if o not in flags]]  # fmt: skip
    proc = run_cli("bigmodel.train", *args, timeout=timeout, env={**wandb_dirs, **(env or {})}, unset=unset)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def run_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p.parent for p in (tmp_path / "logs").rglob("metrics.json"))


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """One run with logger=many, media callbacks and log_model, with no API key and no reachable W&B host."""
    tmp = tmp_path_factory.mktemp("many")
    proc = train(
        tmp,
        "logger=many",
        MEDIA,
        "logger.wandb.log_model=true",
        "logger.wandb.watch.log=all",
        "logger.wandb.watch.log_freq=2",
        "tags=[digits,e2e]",
        *SHORT,
        env={"WANDB_BASE_URL": "https://192.0.2.1", "NETRC": str(tmp / "no-netrc")},
        unset=("WANDB_MODE", "WANDB_API_KEY", "WANDB_SILENT"),
    )
    (out,) = run_dirs(tmp)
    (run,) = find_runs(out)
    return proc, out, run


@pytest.mark.timeout(600)
def test_no_key_no_network_goes_offline_once_and_prints_sync_command(offline_run):
    proc, out, run = offline_run
    log = proc.stdout + proc.stderr
    assert log.count("W&B: recording offline because no W&B API key found") == 1
    assert "syncing is set to `offline`" not in log  # wandb's own banner would say it a second time
    assert f"wandb sync {run.dir}" in log and run.dir.is_relative_to(out / "wandb")
    assert (out / "wandb" / "run_id.txt").read_text().strip() == run.id


def test_offline_run_has_nested_config_and_run_facts(offline_run):
    _, out, run = offline_run
    assert run.config["model"]["optimizer"]["lr"] == 0.003  # nested, not "model/optimizer/lr" or a string
    assert run.config["data"]["batch_size"] == 64 and run.config["trainer"]["max_epochs"] == 2
    facts = run.config["run"]
    assert facts["params"]["total"] >= facts["params"]["trainable"] > 1000
    assert len(facts["git"]["commit"] or "x" * 40) == 40 and facts["git"]["dirty"] in (True, False, None)
    assert facts["output_dir"] == str(out)
    # the module's hyper-parameters appear once, under model.*, not again at the top level
    assert set(run.config) == {
        "task_name",
        "tags",
        "train",
        "test",
        "ckpt_path",
        "seed",
        "optimized_metric",
        "nonfinite_loss",
        "data",
        "model",
        "callbacks",
        "logger",
        "trainer",
        "paths",
        "extras",
        "run",
    }
    assert (run.project, run.group, run.job_type, run.tags) == (
        "bigmodel",
        "digits_cnn",
        "train",
        ["digits", "e2e"],
    )
    assert run.name == f"digits_cnn-{out.name}"


def test_offline_run_has_metrics_at_each_step(offline_run):
    _, _, run = offline_run
    assert {
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/f1",
        "val/acc_best",
        "test/acc",
    } <= run.metric_names
    assert run.steps("train/loss") == [0, 1, 2, 3, 4, 5]  # 2 epochs x 3 batches, log_every_n_steps=1
    assert len(run.steps("val/acc")) == 2 and len(run.steps("test/acc")) == 1


def test_offline_run_has_media_and_model_artifacts(offline_run):
    _, _, run = offline_run
    assert len(run.steps("val/samples")) == 2 and len(run.steps("val/misclassified")) >= 1
    assert len(run.steps("val/per_class")) == 2 and len(run.steps("val/confusion_matrix_table")) == 2
    assert len(run.media_files("images")) >= 32 and len(run.media_files("table")) == 4
    models = [a for a in run.artifacts if a["type"] == "model"]
    assert models and all(a["files"] == ["model.ckpt"] for a in models)
    assert any({"best", "latest"} <= set(a["aliases"]) for a in models)


def test_watch_logs_gradient_and_parameter_histograms(offline_run):
    _, _, run = offline_run
    grads = {k for k in run.metric_names if k.startswith("gradients/")}
    params = {k for k in run.metric_names if k.startswith("parameters/")}
    assert grads and params and any("weight" in k for k in grads)


def test_many_gives_every_logger_the_hyperparameters_and_tensorboard_the_media(offline_run):
    _, out, _ = offline_run
    for hparams in (out / "csv" / "hparams.yaml", out / "tensorboard" / "hparams.yaml"):
        h = yaml.safe_load(hparams.read_text())
        assert h["model"]["optimizer"]["lr"] == 0.003 and h["run"]["params"]["total"] > 1000, hparams
    tags = tb_tags(out / "tensorboard")
    assert {"val/samples", "val/misclassified", "val/confusion_matrix"} <= tags["images"]
    assert {"train/loss", "val/acc"} <= tags["scalars"]


def test_wandb_mode_disabled_trains_and_writes_no_run(tmp_path, make_cfg, monkeypatch):
    """In-process (no subprocess start-up): a disabled W&B starts no service."""
    from bigmodel.train import train as train_in_process

    for k, v in {"WANDB_MODE": "disabled", "WANDB_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    cfg = make_cfg([*QUIET, "logger=wandb", MEDIA, "logger.wandb.log_model=true", *SHORT])
    train_in_process(cfg)
    out = Path(cfg.paths.output_dir)
    assert not find_runs(tmp_path) and not (out / "wandb" / "run_id.txt").exists()
    assert "wandb" not in torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)


def test_fast_dev_run_with_wandb_and_media_callbacks(tmp_path):
    proc = train(
        tmp_path,
        "debug=fdr",
        "logger=wandb",
        "callbacks=[media_classification,media_vision]",
        env={"WANDB_MODE": "offline"},
        quiet=["extras.print_config=false"],
    )
    assert "Traceback" not in proc.stderr
    (run,) = find_runs(tmp_path)  # the run exists and holds the config; fast_dev_run logs no metrics
    assert run.config["trainer"]["fast_dev_run"] is True and run.group == "debug"


@pytest.mark.slow  # two training processes, 30 s; test_wandb_logger.py keeps the resume id lookup (checkpoint, then run dir) fast
def test_resume_from_checkpoint_continues_the_same_run(tmp_path):
    env = {"WANDB_MODE": "offline"}
    train(tmp_path, "logger=wandb", *SHORT, "trainer.max_epochs=1", env=env)
    (first,) = run_dirs(tmp_path)
    run_id = (first / "wandb" / "run_id.txt").read_text().strip()
    ckpt = first / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["wandb"]["id"] == run_id

    train(tmp_path, "logger=wandb", *SHORT, f"ckpt_path={ckpt}", env=env)
    second = next(d for d in run_dirs(tmp_path) if d != first)
    (resumed,) = find_runs(second)
    assert resumed.id == run_id
    assert min(resumed.steps("train/loss")) >= 3  # continues after the first run's 3 steps


@pytest.mark.slow  # a 2-job sweep, 18 s; test_wandb_logger.py keeps the group/name defaults fast
def test_multirun_jobs_share_one_group(tmp_path):
    train(
        tmp_path,
        "-m",
        "logger=wandb",
        "seed=1,2",
        *SHORT,
        "trainer.max_epochs=1",
        env={"WANDB_MODE": "offline"},
    )
    runs = find_runs(tmp_path)
    assert len(runs) == 2 and len({r.id for r in runs}) == 2
    (sweep,) = {d.parent.name for d in run_dirs(tmp_path)}
    assert {r.group for r in runs} == {f"digits_cnn-{sweep}"}
    assert sorted(r.config["seed"] for r in runs) == [1, 2]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_makes_one_run(tmp_path):
    train(
        tmp_path,
        "trainer=ddp_cpu",
        "trainer.sync_batchnorm=false",  # SyncBatchNorm is GPU-only; configs/trainer/ddp_cpu.yaml sets it
        "logger=wandb",
        MEDIA,
        *SHORT,
        env={"WANDB_MODE": "offline"},
    )
    (out,) = run_dirs(tmp_path)
    runs = find_runs(tmp_path)
    assert len(runs) == 1 and runs[0].config["trainer"]["devices"] == 2
    assert runs[0].steps("val/samples")  # media from rank 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_key_but_no_network_falls_back_offline_instead_of_hanging(tmp_path):
    # With a key, wandb.init alone would wait ~100 s for the unreachable host before failing.
    proc = train(
        tmp_path,
        "logger=wandb",
        *SHORT,
        "trainer.max_epochs=1",
        env={"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "https://192.0.2.1"},
        unset=("WANDB_MODE",),
    )
    assert (proc.stdout + proc.stderr).count("could not be reached") == 1
    (run,) = find_runs(tmp_path)
    assert run.config["task_name"] == "digits_cnn" and run.steps("val/acc")


# the W&B key each media callback writes, and the media folder its files go to
MEDIA_KEYS = {
    "media_vision": ("val/samples", "images"),
    "media_audio": ("val/audio", "audio"),
    "media_text": ("val/generated", "table"),
    "media_classification": ("val/per_class", "table"),
}


def _media_callbacks(experiment: str) -> list[str]:
    """The media callbacks that ``experiment``'s composed config enables (composed in the test, not at
    collection: 25 compositions cost every pytest worker 8 s even when this slow test is deselected)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"])
    GlobalHydra.instance().clear()
    return [name for name in cfg.get("callbacks") or {} if name in MEDIA_KEYS]


EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


# experiments whose data ../shared/data does not hold (a user's folder, or a download this machine cannot make)
NOT_IN_SHARED_DATA = {
    "audio_folder_cnn": "a folder of the user's own clips",
    "cifar10_resnet": "the full CIFAR-10 archive (../shared/data has a folder subset)",
    "cifar10_vit": "the full CIFAR-10 archive (../shared/data has a folder subset)",
    "speech_commands_cnn": "Speech Commands v0.02 (a 2.3 GiB download)",
}
# what a 2-batch run needs to reach its media: LMs validate every 250 steps; distillation needs a teacher
# checkpoint, and with alpha=0 trains the student from the labels alone (its media are the classifier's)
EXTRA = {
    "shakespeare_char_gpt": ["trainer.val_check_interval=2"],
    "text_file_bpe_gpt": ["trainer.val_check_interval=2"],
    "mnist_distill": ["model.alpha=0"],
    "sst2_distill": ["model.alpha=0"],
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_media_reaches_the_offline_run(tmp_path, shared_data, experiment):
    if experiment in NOT_IN_SHARED_DATA:
        pytest.skip(f"{experiment} needs {NOT_IN_SHARED_DATA[experiment]}")
    callbacks = _media_callbacks(experiment)
    if not callbacks:
        pytest.skip(f"{experiment} enables no media callback")
    train(
        tmp_path,
        f"experiment={experiment}",
        "logger=wandb",
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=2",
        "++trainer.limit_val_batches=2",
        "++trainer.limit_test_batches=1",
        "trainer.accelerator=cpu",
        *EXTRA.get(experiment, []),
        env={"WANDB_MODE": "offline"},
    )
    (run,) = find_runs(tmp_path)
    for callback in callbacks:
        key, kind = MEDIA_KEYS[callback]
        assert run.steps(key), f"{experiment}: {callback} logged no {key}; logged {sorted(run.metric_names)}"
        assert run.media_files(kind), f"{experiment}: no files under media/{kind}"
