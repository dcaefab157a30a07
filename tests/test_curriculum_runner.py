"""The stage runner on the real LatticeGrowth-v0 with tiny budgets: layout, transfer, interrupt, resume."""

import contextlib
import io
import json
import signal

import pytest
import torch
from curriculum_fakes import SIGNALLING_ENV_ID, one_torch_thread  # noqa: F401 - autouse fixture
from stable_baselines3 import PPO
from test_curriculum_cli import CONFIGS

from sb3_ext.callbacks import verify
from sb3_ext.curriculum.cli import main
from sb3_ext.curriculum.config import load_stage_configs
from sb3_ext.curriculum.presets import override
from sb3_ext.curriculum.runner import CurriculumRunner
from sb3_ext.curriculum.state import RunState
from sb3_ext.envs.lattice.env import LatticeGrowthEnv

TINY = {
    "total_timesteps": 64,
    "n_envs": 1,
    "environment": {"max_steps": 8},
    "ppo": {"n_steps": 16, "batch_size": 16, "n_epochs": 1},
}
# Small lattices keep the test fast; each stage still gets its own size and PPO settings.
LATTICES = {1: [8, 8, 5], 2: [10, 10, 6], 3: [12, 12, 6]}


def _tiny_configs(changes=None):
    changes = changes or {}
    configs = load_stage_configs(CONFIGS)
    return {
        stage: override(
            override(config, {**TINY, "environment": {**TINY["environment"], "lattice_size": LATTICES[stage]}}, "test"),
            changes.get(stage, {}),
            "test",
        )
        for stage, config in configs.items()
    }


@pytest.fixture(scope="module")
def three_stage_run(tmp_path_factory):
    """One tiny three-stage run shared by the tests below (SubprocVecEnv is covered by the slow test)."""
    state = RunState(tmp_path_factory.mktemp("curriculum") / "run", seed=3, preset=None, configs=_tiny_configs())
    state.run_dir.mkdir()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = CurriculumRunner(state, progress=False, eval_episodes=2).run([1, 2, 3])
    torch.set_num_threads(previous)
    return state, code, buffer.getvalue()


def test_three_stages_transfer_with_their_own_settings(three_stage_run):
    state, code, table = three_stage_run
    configs = state.configs
    assert code == 0

    summary = json.loads((state.run_dir / "summary.json").read_text())
    records = RunState.load(state.run_dir).records
    for stage in (1, 2, 3):
        stage_dir = state.stage_dir(stage)
        assert records[stage].status == "done" and summary["stages"][str(stage)]["status"] == "done"
        assert {p.name for p in (stage_dir / "checkpoints").iterdir()} >= {"best.zip", "latest.zip"}
        for name in ("metrics.json", "training_curves.png", "logs/training.log", f"stage{stage}_final.zip"):
            assert (stage_dir / name).is_file(), name
        assert list((stage_dir / "tensorboard").glob("events.out.tfevents.*"))
        assert verify(stage_dir / "run_manifest.json") == []
        result = summary["stages"][str(stage)]
        assert result["neutral"]["mean_ess"] == pytest.approx(1.0)
        assert 0.0 < result["policy"]["mean_ess"] <= 1.0
    assert verify(state.run_dir / "run_manifest.json") == []

    # each stage starts where the previous one ended: one continuous step axis
    assert records[1].start_timesteps == 0
    assert records[2].start_timesteps == records[1].end_timesteps >= 64
    assert records[3].start_timesteps == records[2].end_timesteps
    stage2_metrics = json.loads((state.stage_dir(2) / "metrics.json").read_text())
    assert min(stage2_metrics["rollout/ep_rew_mean"]["steps"]) > records[1].end_timesteps
    # the final models carry their own stage's settings, not stage 1's
    for stage in (2, 3):
        final = PPO.load(state.final_model(stage))
        assert final.learning_rate == configs[stage].ppo.learning_rate
        assert final.ent_coef == configs[stage].ppo.ent_coef
    assert final.observation_space.shape == PPO.load(state.final_model(1)).observation_space.shape
    assert "8x8x5" in table and "12x12x6" in table and table.count(" done ") == 3


def test_sigterm_saves_latest_then_resume_finishes_and_continues(tmp_path, capsys):
    # The old four-agent setup (agents.mode: fixed), whose env the signalling stand-in extends.
    fixed = {"environment": {**TINY["environment"], "agents": {"mode": "fixed"}}}
    state = RunState(tmp_path / "run", seed=0, preset=None, configs=_tiny_configs({1: fixed, 2: fixed}))
    state.run_dir.mkdir()
    previous_handler = signal.getsignal(signal.SIGTERM)
    # The env sends SIGTERM to this process at its 30th step.
    code = CurriculumRunner(state, progress=False, eval_episodes=2, env_id=SIGNALLING_ENV_ID).run([1, 2])
    assert code == 143
    assert signal.getsignal(signal.SIGTERM) is previous_handler  # handlers restored
    record = RunState.load(state.run_dir).records[1]
    assert record.status == "interrupted" and 2 not in RunState.load(state.run_dir).records
    latest = state.stage_dir(1) / "checkpoints" / "latest.zip"
    assert PPO.load(latest).num_timesteps == record.end_timesteps < 64
    assert not state.final_model(1).exists()
    assert "--resume-from" in capsys.readouterr().out

    # Resume with the real environment through the command line: finish stage 1, then stage 2.
    assert main(["--resume-from", str(latest), "--stage", "2", "--no-progress", "--eval-episodes", "2"]) == 0
    records = RunState.load(state.run_dir).records
    assert records[1].status == records[2].status == "done"
    assert records[1].start_timesteps == 0 and 64 <= records[1].end_timesteps < 64 + 16
    assert records[2].start_timesteps == records[1].end_timesteps
    metrics = json.loads((state.stage_dir(1) / "metrics.json").read_text())
    steps = metrics["rollout/ep_rew_mean"]["steps"]
    assert steps == sorted(set(steps))  # no step logged twice: the axis continues
    log = (state.stage_dir(1) / "logs" / "training.log").read_text()
    assert f"training starts at step {record.end_timesteps}" in log
    assert verify(state.run_dir / "run_manifest.json") == []


def test_resume_and_eval_only_errors_and_eval_report(three_stage_run, tmp_path, capsys):
    state = three_stage_run[0]
    final = state.final_model(1)

    assert main(["--resume-from", str(final), "--stage", "1"]) == 2
    assert "nothing to train up to stage 1" in capsys.readouterr().err
    assert main(["--resume-from", str(final), "--preset", "quick"]) == 2
    assert "drop --preset" in capsys.readouterr().err
    outside = tmp_path / "copy.zip"
    outside.write_bytes(final.read_bytes())
    assert main(["--resume-from", str(outside)]) == 2
    assert "not inside a curriculum run folder" in capsys.readouterr().err
    (tmp_path / "junk.zip").write_text("not a model")
    assert main(["--eval-only", "--checkpoint", str(tmp_path / "junk.zip")]) == 2
    assert "not a saved model" in capsys.readouterr().err

    out_dir = tmp_path / "evals"
    assert main(["--eval-only", "--checkpoint", str(final), "--output", str(out_dir), "--eval-episodes", "2"]) == 0
    printed = capsys.readouterr().out
    assert "policy" in printed and "neutral" in printed
    (report_path,) = out_dir.glob("eval_stage1_*.json")
    report = json.loads(report_path.read_text())
    assert report["stage"] == 1 and report["config"]["environment"]["max_steps"] == 8  # the run's recorded config
    assert report["neutral"]["mean_ess"] == pytest.approx(1.0) and report["policy"]["episodes"] == 2
    assert set(report["hand_rule_gains"]) == {"0.125", "0.25", "0.5"} and report["hand_rule"]["gain"] in (0.125, 0.25, 0.5)
    # equal thickness: every film is read at the neutral films' final height
    for name in ("policy", "hand_rule"):
        assert report[name]["mean_height"] >= report["neutral"]["mean_height"] - 0.05

    # the same policy, unchanged, on a lattice and a temperature given on the command line
    argv = ["--eval-only", "--checkpoint", str(final), "--output", str(out_dir), "--eval-episodes", "1"]
    assert main([*argv, "--lattice", "16", "12", "6", "--temperature", "650"]) == 0
    assert "16x12x6 at 650 K" in capsys.readouterr().out
    report = json.loads(max(out_dir.glob("eval_stage1_*.json")).read_text())
    assert (
        report["config"]["environment"]["lattice_size"] == [16, 12, 6]
        and report["config"]["environment"]["temperature"] == 650.0
    )
    assert report["config"]["environment"]["n_proposals"] == round(4 * 16 * 12 / 64)  # events per step scale with the area


def test_eval_only_refuses_a_policy_with_another_view_before_writing_anything(three_stage_run, tmp_path, capsys):
    final = three_stage_run[0].final_model(1)
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    for stage_file in CONFIGS.glob("*.yaml"):
        (config_dir / stage_file.name).write_text(stage_file.read_text().replace("patch_radius: 2", "patch_radius: 3"))
    output = tmp_path / "out"
    argv = [
        "--eval-only",
        "--checkpoint",
        str(final),
        "--stage",
        "1",
        "--config-dir",
        str(config_dir),
        "--output",
        str(output),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(final) in err and "environment.patch_radius=3" in err and "stage1_small.yaml" in err
    assert not output.exists()

    # a checkpoint of the old four-agent setup is evaluated in the mode whose input it reads
    fixed = tmp_path / "fixed.zip"
    PPO("MlpPolicy", LatticeGrowthEnv(), n_steps=16, batch_size=16, device="cpu").save(fixed)
    assert (
        main(["--eval-only", "--checkpoint", str(fixed), "--stage", "1", "--eval-episodes", "1", "--output", str(output)]) == 0
    )
    assert "agents fixed" in capsys.readouterr().out
