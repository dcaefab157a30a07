"""The curriculum CLI and runner under bad input, crashes, concurrent sessions and stale resumes."""

import datetime
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import pytest
from stable_baselines3 import PPO

from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.common.rescue import RunLock, save_on_exception
from sb3_ext.curriculum import cli
from sb3_ext.curriculum.cli import main
from sb3_ext.curriculum.runner import CurriculumRunner
from sb3_ext.curriculum.state import RunState

from test_curriculum_cli import CONFIGS
from test_curriculum_runner import _tiny_configs


def _one_line_error(capsys, code, expected_code=2):
    assert code == expected_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory):
    """A tiny finished run of stages 1 and 2 under <output>/run_test (tests copy it before changing it)."""
    output = tmp_path_factory.mktemp("curriculum")
    # the four-agent setup: one step per env step, so the checkpoints land at the step counts below
    fixed = {"environment": {"agents": {"mode": "fixed"}}}
    state = RunState(output / "run_test", seed=1, preset=None, configs=_tiny_configs({1: fixed, 2: fixed}))
    state.run_dir.mkdir()
    assert CurriculumRunner(state, progress=False, eval_episodes=1, subprocesses=False).run([1, 2]) == 0
    return output


def _copy(two_stage_run, tmp_path):
    shutil.copytree(two_stage_run, tmp_path / "out")
    return tmp_path / "out", RunState.load(tmp_path / "out" / "run_test")


def test_a_later_stage_alone_is_refused_with_the_command_that_continues_the_chain(two_stage_run, tmp_path, capsys):
    output, state = _copy(two_stage_run, tmp_path)
    err = _one_line_error(capsys, main(["--stage", "2", "--output", str(output), "--no-progress"]))
    assert f"--resume-from {state.final_model(1)} --stage 2" in err
    err = _one_line_error(capsys, main(["--stage", "3", "--output", str(tmp_path / "empty"), "--no-progress"]))
    assert "--stage 3 alone would train from scratch" in err and "--stage all" in err
    assert not (tmp_path / "empty").exists() and sorted(p.name for p in output.iterdir()) == ["run_test"]


def test_resuming_an_older_stage1_checkpoint_supersedes_later_stages(two_stage_run, tmp_path, capsys):
    _, state = _copy(two_stage_run, tmp_path)
    (state.run_dir / ".summary.json.99.dead.tmp").write_text("left by a killed writer")
    checkpoint = state.stage_dir(1) / "checkpoints" / "checkpoint_32.zip"
    assert (
        main(["--resume-from", str(checkpoint), "--stage", "1", "--no-progress", "--vec-env", "dummy", "--eval-episodes", "1"])
        == 0
    )
    records = RunState.load(state.run_dir).records
    assert records[1].status == "done" and records[2].status == "superseded" and records[2].result is None
    summary = json.loads((state.run_dir / "summary.json").read_text())
    assert summary["stages"]["2"]["status"] == "superseded" and summary["stages"]["2"]["policy"] is None
    assert not list(state.run_dir.rglob("*.tmp"))
    capsys.readouterr()
    err = _one_line_error(capsys, main(["--resume-from", str(state.final_model(2)), "--no-progress"]))
    assert f"stage 2 was built on a stage-1 model that a later resume replaced; continue from {state.final_model(1)}" in err


def test_a_second_session_on_the_same_run_is_refused_until_the_first_dies(two_stage_run, tmp_path, capsys):
    _, state = _copy(two_stage_run, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from sb3_ext.common.rescue import RunLock; "
            "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)",
            str(state.run_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        final = str(state.final_model(2))
        err = _one_line_error(capsys, main(["--resume-from", final, "--stage", "3", "--no-progress"]))
        assert f"{state.run_dir}: this run is in use by another session" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(state.run_dir):  # the kernel released the dead session's lock
        pass


def test_two_eval_only_runs_in_the_same_second_keep_both_results(two_stage_run, tmp_path, capsys, monkeypatch):
    _, state = _copy(two_stage_run, tmp_path)

    class FrozenClock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(cli.datetime, "datetime", FrozenClock)
    for _ in range(2):
        assert (
            main(
                [
                    "--eval-only",
                    "--checkpoint",
                    str(state.final_model(1)),
                    "--output",
                    str(tmp_path / "evals"),
                    "--eval-episodes",
                    "1",
                ]
            )
            == 0
        )
    assert sorted(p.name for p in (tmp_path / "evals").iterdir()) == [
        "eval_stage1_20260102-030405.json",
        "eval_stage1_20260102-030405_2.json",
    ]


def test_a_truncated_model_is_one_line_for_eval_only_and_resume(two_stage_run, tmp_path, capsys):
    _, state = _copy(two_stage_run, tmp_path)
    latest = state.stage_dir(1) / "checkpoints" / "latest.zip"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    for argv in (["--eval-only", "--checkpoint", str(latest)], ["--resume-from", str(latest)]):
        err = _one_line_error(capsys, main([*argv, "--no-progress"]))
        assert str(latest) in err and ("damaged or truncated" in err or "not a saved" in err)


def test_bad_settings_are_refused_before_a_run_folder_exists(tmp_path, capsys):
    output = tmp_path / "runs"
    err = _one_line_error(capsys, main(["--device", "bogus", "--output", str(output), "--no-progress"]))
    assert "--device bogus: not a torch device" in err
    with pytest.raises(SystemExit) as caught:
        main(["--eval-episodes", "0", "--output", str(output)])
    assert caught.value.code == 2 and "--eval-episodes: expected a positive integer, got 0" in capsys.readouterr().err
    for stage_file in CONFIGS.glob("*.yaml"):
        (tmp_path / stage_file.name).write_text(stage_file.read_text())
    crowded = tmp_path / "stage1_small.yaml"
    crowded.write_text(crowded.read_text().replace("n_swarm: 4 ", "n_swarm: 65 ", 1))
    err = _one_line_error(capsys, main(["--config-dir", str(tmp_path), "--output", str(output), "--no-progress"]))
    assert f"{crowded}: environment.agents.n_swarm: expected at most nx * ny = 64 agents (one per column), got 65" in err
    (tmp_path / "stage2_medium.yaml").write_bytes(b"environment:\n  lattice_size: [8, 8, 5] # \xe9\xff\n")
    crowded.write_text((CONFIGS / "stage1_small.yaml").read_text())
    err = _one_line_error(capsys, main(["--config-dir", str(tmp_path), "--output", str(output), "--no-progress"]))
    assert f"{tmp_path / 'stage2_medium.yaml'}: not a UTF-8 text file" in err
    assert not output.exists()


def test_an_unwritable_output_is_one_line_before_any_work(two_stage_run, tmp_path, capsys):
    _, state = _copy(two_stage_run, tmp_path)
    (tmp_path / "a_file").write_text("")
    blocked = tmp_path / "a_file" / "runs"  # ENOTDIR even for root, for whom a chmod changes nothing
    err = _one_line_error(capsys, main(["--output", str(blocked), "--no-progress"]))
    assert f"--output {blocked}: cannot write there" in err
    err = _one_line_error(capsys, main(["--eval-only", "--checkpoint", str(state.final_model(1)), "--output", str(blocked)]))
    assert "cannot write there" in err and "neutral" not in capsys.readouterr().out  # refused before evaluating


def test_a_checkpoint_folder_failing_mid_run_saves_the_progress_and_marks_the_stage_failed(tmp_path, capsys, monkeypatch):
    import sb3_ext.callbacks.artifacts as artifacts

    real_save = artifacts.atomic_save_model

    def failing_save(model, path):
        if "checkpoint_" in str(path) and model.num_timesteps >= 32:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_save(model, path)

    monkeypatch.setattr(artifacts, "atomic_save_model", failing_save)
    output = tmp_path / "runs"
    code = main(
        [
            "--config-dir",
            str(CONFIGS),
            "--output",
            str(output),
            "--no-progress",
            "--vec-env",
            "dummy",
            "--stage",
            "1",
            "--n-envs",
            "1",
            "--eval-episodes",
            "1",
            "--preset",
            "quick",
            "--checkpoint-freq",
            "16",
        ]
    )
    assert code == 1
    logged = capsys.readouterr().err
    assert "Traceback" not in logged
    err = logged.splitlines()[-1]  # the log lines of the run come before it
    assert err.startswith("sb3-ext-curriculum: error: ")
    assert "training failed (OSError: [Errno 30] Read-only file system" in err
    (run_dir,) = output.iterdir()
    record = RunState.load(run_dir).records[1]
    assert record.status == "failed" and record.rescue is not None and f"saved to {record.rescue}" in err
    assert PPO.load(record.rescue).num_timesteps == record.end_timesteps >= 32
    assert f"--resume-from {record.rescue}" in err
    # the failed stage's log file is detached: later runs in this process do not write into it
    assert logging.getLogger("sb3_ext").handlers == []


def test_save_on_exception_saves_any_model_and_reraises(tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    class Explode(BaseCallback):
        def _on_step(self):
            if self.num_timesteps == 40:
                raise RuntimeError("boom")
            return True

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, device="cpu")
    (tmp_path / "a_file").write_text("")
    with (
        pytest.raises(RuntimeError, match="boom"),
        save_on_exception(model, tmp_path / "a_file" / "x.zip", tmp_path / "rescue.zip") as rescue,
    ):
        model.learn(200, callback=Explode())
    assert rescue.path == tmp_path / "rescue.zip" and len(rescue.failures) == 1
    assert PPO.load(rescue.path).num_timesteps == 40
