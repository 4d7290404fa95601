"""W&B glue in-process: mode decision (bounded, offline fallback), config validation, resume ids, configs."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import hydra
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from bigmodel.loggers.wandb_logger import (
    WandbLogger,
    _wandb_init_kwargs,
    decide_mode,
    host_reachable,
    run_id_from_checkpoint,
)
from bigmodel.utils.errors import ConfigError

# TEST-NET-1 (RFC 5737): reserved, never routed; a connect either fails at once or times out.
UNREACHABLE = "https://192.0.2.1"


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    return monkeypatch


def test_no_key_goes_offline_without_touching_the_network(no_wandb_env):
    no_wandb_env.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("network was used"))
    mode, reason = decide_mode(offline=False)
    assert mode == "offline" and "API key" in reason


@pytest.mark.timeout(30)
def test_key_but_no_network_goes_offline_within_the_timeout(no_wandb_env):
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    no_wandb_env.setenv("WANDB_BASE_URL", UNREACHABLE)
    started = time.monotonic()
    mode, reason = decide_mode(offline=False, connect_timeout_s=0.5)
    assert mode == "offline" and "could not be reached" in reason
    assert time.monotonic() - started < 20  # bounded by connect_timeout_s, not wandb's ~100 s


def test_netrc_entry_counts_as_a_key(no_wandb_env, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 192.0.2.1\n  login user\n  password abc123\n")
    netrc.chmod(0o600)
    no_wandb_env.setenv("NETRC", str(netrc))
    no_wandb_env.setenv("WANDB_BASE_URL", UNREACHABLE)
    assert decide_mode(offline=False, connect_timeout_s=0.2)[1].endswith(
        "could not be reached (TCP connect, 0.2 s timeout)"
    )


@pytest.mark.parametrize(
    ("env", "offline", "mode"),
    [
        ("disabled", False, "disabled"),
        ("offline", False, "offline"),
        ("dryrun", False, "offline"),
        ("online", True, "online"),
        ("", True, "offline"),
    ],
)
def test_wandb_mode_env_is_respected(no_wandb_env, env, offline, mode):
    if env:
        no_wandb_env.setenv("WANDB_MODE", env)
    assert decide_mode(offline=offline) == (mode, "")


def test_host_reachable_sees_a_listening_socket():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert host_reachable(f"http://127.0.0.1:{server.getsockname()[1]}", 2.0)
    assert not host_reachable("http://127.0.0.1:1", 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resume": "sometimes"}, "resume"),
        ({"log_model": "best"}, "log_model"),
        ({"watch": {"log": "weights"}}, "watch.log"),
        ({"connect_timeout_s": 0}, "timeout"),
    ],
)
def test_bad_settings_raise_config_errors(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        WandbLogger(save_dir=tmp_path, **kwargs)


def test_offline_with_log_model_is_allowed(tmp_path):
    # Lightning's WandbLogger refuses this; ours records the artifact offline for `wandb sync`.
    assert WandbLogger(save_dir=tmp_path, offline=True, log_model=True)._log_model is True


def test_group_and_name_default_to_the_experiment(tmp_path):
    lg = WandbLogger(save_dir=tmp_path / "2026-01-01_00-00-00_abc123", experiment="digits_cnn")
    assert _wandb_init_kwargs(lg)["group"] == "digits_cnn"
    assert _wandb_init_kwargs(lg)["name"] == "digits_cnn-2026-01-01_00-00-00_abc123"


def _ckpt(path, run_id=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, **({"wandb": {"id": run_id}} if run_id else {})}, path)
    return path


def test_run_id_comes_from_checkpoint_then_run_dir(tmp_path):
    assert run_id_from_checkpoint(_ckpt(tmp_path / "a" / "checkpoints" / "last.ckpt", "abc123")) == "abc123"
    bare = _ckpt(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert run_id_from_checkpoint(bare) is None
    (tmp_path / "b" / "wandb").mkdir()
    (tmp_path / "b" / "wandb" / "run_id.txt").write_text("fromdir\n")
    assert run_id_from_checkpoint(bare) == "fromdir"


def test_resume_policies(tmp_path):
    ckpt = _ckpt(tmp_path / "r" / "checkpoints" / "last.ckpt", "run42")
    lg = WandbLogger(save_dir=tmp_path / "new")
    assert lg.resume_from_checkpoint(ckpt) == "run42" and _wandb_init_kwargs(lg)["id"] == "run42"
    never = WandbLogger(save_dir=tmp_path / "new2", resume="never")
    assert never.resume_from_checkpoint(ckpt) is None and _wandb_init_kwargs(never)["id"] is None
    fixed = WandbLogger(save_dir=tmp_path / "new3", id="mine")
    assert fixed.resume_from_checkpoint(ckpt) == "mine"
    with pytest.raises(ConfigError, match="resume=must"):
        WandbLogger(save_dir=tmp_path / "new4", resume="must").resume_from_checkpoint(
            _ckpt(tmp_path / "x.ckpt")
        )


def test_logger_configs_compose_and_instantiate(make_cfg):
    cfg = make_cfg(["logger=many"])
    loggers = {name: hydra.utils.instantiate(conf) for name, conf in cfg.logger.items()}
    assert isinstance(loggers["csv"], CSVLogger) and isinstance(loggers["tensorboard"], TensorBoardLogger)
    wb = loggers["wandb"]
    assert isinstance(wb, WandbLogger) and wb.checkpoint_info() is None  # nothing started before training
    init = _wandb_init_kwargs(wb)
    assert init["group"] == cfg.task_name and init["tags"] == list(cfg.tags)
    assert cfg.logger.wandb.save_dir == cfg.paths.output_dir


def test_wandb_init_kwargs_reach_wandb_init(tmp_path, monkeypatch):
    """Guards the one Lightning internal we use (lightning 2.6.6: WandbLogger keeps wandb.init's keyword
    arguments in `_wandb_init` and reads them on the first `.experiment`): what we set there after
    construction (mode, settings, a resumed run id) must be what wandb.init receives."""
    import wandb

    seen = {}

    class FakeRun:
        id, project, entity, name = "run42", "bigmodel", "", "fake"
        settings = SimpleNamespace(sync_dir=str(tmp_path / "sync"))

        def define_metric(self, *a, **k):
            pass

        def finish(self, exit_code=0):
            seen["finished"] = exit_code

    def fake_init(**kwargs):
        seen.update(kwargs)
        return FakeRun()

    monkeypatch.setattr(wandb, "init", fake_init)
    monkeypatch.setattr(wandb, "run", None)
    monkeypatch.setenv("WANDB_MODE", "offline")
    ckpt = _ckpt(tmp_path / "r" / "checkpoints" / "last.ckpt", "run42")
    lg = WandbLogger(save_dir=tmp_path / "run", experiment="digits_cnn", resume="allow")
    init = _wandb_init_kwargs(lg)
    assert isinstance(init, dict) and {"name", "project", "dir", "id", "resume", "group"} <= set(init)
    assert "anonymous" not in init  # Lightning adds anonymous=None; wandb warns about it

    lg.resume_from_checkpoint(ckpt)
    assert lg.experiment.id == "run42"
    assert seen["id"] == "run42" and seen["mode"] == "offline" and seen["resume"] == "allow"
    assert isinstance(seen["settings"], wandb.Settings) and seen["group"] == "digits_cnn"
    assert lg.checkpoint_info() == {"id": "run42", "project": "bigmodel", "entity": ""}
    assert (tmp_path / "run" / "wandb" / "run_id.txt").read_text() == "run42\n"
    lg.finish(3)
    assert seen["finished"] == 3 and lg.checkpoint_info() is None


def test_disabled_mode_turns_log_model_off(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert WandbLogger(save_dir=tmp_path, log_model="all")._log_model is False
