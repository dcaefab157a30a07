"""The route for plain rl-zoo3 users: ``python -m sb3_ext.zoo.custom_envs`` then ``python -m rl_zoo3.train``."""

from __future__ import annotations

import pytest

from sb3_ext.zoo.config import HYPERPARAMS_DIR, ZooUsageError
from sb3_ext.zoo.custom_envs import MARKER, write_custom_envs
from sb3_ext.zoo.registry import ZOO_ALGORITHMS
from zoo_support import assert_ok, run_python, zoo_test_case


def test_writer_never_clobbers_a_foreign_custom_envs(tmp_path):
    foreign = tmp_path / "custom_envs.py"
    foreign.write_text("import my_envs\n")
    with pytest.raises(ZooUsageError, match="was not written by sb3-ext"):
        write_custom_envs(tmp_path)
    assert foreign.read_text() == "import my_envs\n"
    write_custom_envs(tmp_path, force=True)
    assert MARKER in foreign.read_text()
    write_custom_envs(tmp_path)  # ours: rewriting is fine
    assert [p.name for p in tmp_path.iterdir()] == ["custom_envs.py"]  # no temporary file left


def test_plain_rl_zoo3_train_runs_our_algorithm_through_custom_envs(tmp_path):
    key = "reinforce"
    env_id, extra_flags = zoo_test_case(key)
    hook_dir = tmp_path / "hook"
    assert_ok(run_python(["-m", "sb3_ext.zoo.custom_envs", str(hook_dir)], cwd=tmp_path))
    result = run_python(
        ["-m", "rl_zoo3.train", "--algo", key, "--env", env_id, "--conf-file", str(HYPERPARAMS_DIR / f"{key}.yml"),
         "-n", "64", "--eval-freq", "-1", "-f", "logs", "--num-threads", "1", *extra_flags],
        cwd=tmp_path,
        pythonpath=(hook_dir,),
    )  # fmt: skip
    assert_ok(result)
    algorithm = ZOO_ALGORITHMS[key].load_class()
    assert type(algorithm.load(tmp_path / "logs" / key / f"{env_id}_1" / f"{env_id}.zip")) is algorithm
