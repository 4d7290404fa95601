"""The install story: a run uses the configs and logs/ of the clone it is started in, not the code's clone."""

from __future__ import annotations

import shutil

import pytest
import yaml

from bigmodel.utils import resolvers
from bigmodel.utils.errors import ConfigError
from bigmodel.utils.resolvers import PROJECT_ROOT
from tests.conftest import run_cli


def _clone(path):
    """The parts of a checkout that make it one (what `git clone` brings besides the code)."""
    path.mkdir()
    shutil.copytree(PROJECT_ROOT / "configs", path / "configs")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", path / "pyproject.toml")
    return path


def test_second_clone_resolves_its_own_root_dir(tmp_path):
    """`--cfg job` from another clone: paths.* point into that clone although the code is this one's."""
    clone = _clone(tmp_path / "clone")
    res = run_cli("bigmodel.train", "--cfg", "job", "--resolve", "--package", "paths", cwd=clone)
    assert res.returncode == 0, res.stderr[-2000:]
    paths = yaml.safe_load(res.stdout.split("\n", 1)[1])  # after the `# @package paths` line
    assert paths["root_dir"] == str(clone.resolve()) != str(resolvers.PACKAGE_ROOT)
    assert paths["log_dir"] == str(clone.resolve() / "logs")


def test_root_from_a_subfolder_the_env_or_the_package(tmp_path):
    clone = _clone(tmp_path / "clone")
    (clone / "logs" / "x").mkdir(parents=True)
    assert resolvers.find_project_root(clone / "logs" / "x", env={}) == clone.resolve()
    assert resolvers.find_project_root(tmp_path, env={}) == resolvers.PACKAGE_ROOT  # not in a clone
    assert resolvers.find_project_root(tmp_path, env={"BIGMODEL_ROOT": str(clone)}) == clone.resolve()
    with pytest.raises(ConfigError, match="BIGMODEL_ROOT=.* is not a bigmodel checkout"):
        resolvers.find_project_root(clone, env={"BIGMODEL_ROOT": str(tmp_path)})


def test_a_folder_with_configs_but_another_project_is_not_a_checkout(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text("x: 1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert not resolvers.is_checkout(tmp_path)
    assert resolvers.is_checkout(PROJECT_ROOT)


def test_bad_root_at_import_exits_2_with_the_message_alone(tmp_path):
    """The root is found when the package is imported, before any entry point's error handling runs."""
    res = run_cli("bigmodel.estimate", cwd=tmp_path, env={"BIGMODEL_ROOT": str(tmp_path)})
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"BIGMODEL_ROOT={tmp_path.resolve()} is not a bigmodel checkout" in res.stderr
    assert "Traceback" not in res.stderr
