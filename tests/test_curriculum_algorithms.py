"""Curriculum stages that name their algorithm, and the hand-over between stages of different algorithms."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil

import numpy as np
import pytest
import torch
import yaml
from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from stable_baselines3 import PPO, TD3
from test_curriculum_runner import _tiny_configs

from sb3_ext.callbacks import verify
from sb3_ext.callbacks.manifest import RUN_MANIFEST_NAME
from sb3_ext.curriculum.cli import main
from sb3_ext.curriculum.config import STAGE_FILES, ConfigError, stage_config_from_dict
from sb3_ext.curriculum.presets import apply_preset
from sb3_ext.curriculum.runner import CurriculumRunner
from sb3_ext.curriculum.state import RunState
from sb3_ext.data import read_manifest

TD3_SETTINGS = {"learning_starts": 0, "buffer_size": 2000, "batch_size": 16, "policy_kwargs": {"net_arch": [16]}}


#: A short critic warm-up (quick tests) and a perturbed recording; the stage file's handoff: section sets them.
HANDOFF = {"critic_warmup_steps": 400, "critic_warmup_rounds": 2, "recording_epsilon": 0.2}


def td3_stage(config) -> dict:
    data = config.to_dict()
    del data["ppo"]
    return {**data, "algo": "td3", "td3": dict(TD3_SETTINGS), "handoff": dict(HANDOFF)}


def test_a_stage_names_its_algorithm_and_round_trips():
    ppo_stage = _tiny_configs()[2]
    config = stage_config_from_dict(td3_stage(ppo_stage), "stage2.yaml")
    assert config.algo == "td3" and config.ppo is None and config.algo_settings == TD3_SETTINGS
    assert stage_config_from_dict(config.to_dict(), "again") == config
    assert "ppo" not in config.to_dict() and config.to_dict()["td3"] == TD3_SETTINGS
    assert ppo_stage.algo == "ppo" and "algo" not in ppo_stage.to_dict()  # PPO stage files are unchanged
    # the quick preset's PPO settings are not forced onto a TD3 stage; its budget still applies
    quick = apply_preset("quick", 2, config)
    assert quick.algo_settings == TD3_SETTINGS and quick.total_timesteps == ppo_stage.presets["quick"]["total_timesteps"]


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["td3"].update(learnig_rate=1e-3),
            "stage2.yaml: unknown key 'td3.learnig_rate' (TD3 takes no such argument); did you mean 'learning_rate'?",
        ),
        (lambda d: d["td3"].update(seed=3), "stage2.yaml: td3.seed: set by the curriculum runner, not by the stage file"),
        (
            lambda d: d.update(ppo={"n_steps": 8}),
            "stage2.yaml: ppo: this stage trains td3; its settings go under 'td3:', not 'ppo:'",
        ),
        (lambda d: d.pop("td3"), "stage2.yaml: missing key 'td3' (the settings of algo: td3)"),
        (lambda d: d.update(algo="td4", td4={}), "stage2.yaml: algo: unknown algorithm 'td4'"),
        (lambda d: d.update(td3=[1]), "stage2.yaml: td3: expected a mapping of td3 settings"),
    ],
)
def test_bad_algorithm_sections_are_one_line_errors(change, message):
    data = td3_stage(_tiny_configs()[2])
    change(data)
    with pytest.raises(ConfigError) as error:
        stage_config_from_dict(data, "stage2.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_sb3_ext_and_contrib_algorithms_are_accepted():
    base = _tiny_configs()[1].to_dict()
    del base["ppo"]
    for algo, settings in (
        ("twin_dqn", {"target_reduction": "min"}),
        ("tqc", {"top_quantiles_to_drop_per_net": 1}),
        ("aux_ppo", {"prior_kl_coef": 0.5, "n_steps": 16}),
    ):
        assert stage_config_from_dict({**base, "algo": algo, algo: settings}, algo).algo_settings == settings


@pytest.fixture(scope="module")
def ppo_then_td3(tmp_path_factory):
    # the four-agent setup (one env step per step), whose transitions the TD3 stage takes over
    fixed = {"environment": {"agents": {"mode": "fixed"}}}
    configs = _tiny_configs({1: fixed, 2: fixed})
    configs[2] = stage_config_from_dict(td3_stage(configs[2]), "test")
    state = RunState(tmp_path_factory.mktemp("mixed") / "run", seed=5, preset=None, configs={1: configs[1], 2: configs[2]})
    state.run_dir.mkdir()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()):
        code = CurriculumRunner(state, progress=False, eval_episodes=1).run([1, 2])
    torch.set_num_threads(previous)
    return state, code


def test_ppo_stage_hands_over_to_a_td3_stage(ppo_then_td3):
    state, code = ppo_then_td3
    assert code == 0
    records = RunState.load(state.run_dir).records
    assert records[1].status == records[2].status == "done"
    # stage 1 recorded its policy's transitions (at most its budget) as a dataset with a manifest
    dataset = state.stage_dir(1) / "handoff"
    assert read_manifest(dataset)["n_transitions"] == 64
    assert read_manifest(dataset)["provenance"]["epsilon"] == 0.2  # the next stage's handoff: recording_epsilon
    # stage 2 is a TD3 whose buffer was seeded from them and whose actor was distilled for 5 epochs
    handoff = json.loads((state.stage_dir(2) / "handoff.json").read_text())
    assert handoff["from_algo"] == "ppo" and handoff["to_algo"] == "td3"
    assert handoff["transitions_seeded"] == 64 and len(handoff["distillation_losses"]) == 5
    # then its critic was fitted to the recorded returns as the stage's handoff: section says
    warmup = handoff["critic_warmup"]
    assert warmup["rounds"] == 2 and len(warmup["losses"]) == 2 and warmup["gradient_steps"] >= 400
    # Not "return error after < before": every one of these 64 returns bootstraps from a critic value
    # that the warm-up itself moves, so the two errors are against different targets and either can
    # be larger (test_handoff checks the fit on recordings with episode ends).
    assert np.isfinite([warmup["return_error_before"], warmup["return_error_after"], *warmup["losses"]]).all()
    final = TD3.load(state.final_model(2))
    assert final.learning_starts == 0 and final.batch_size == 16
    # a new algorithm counts its own steps from the stage's start
    assert records[2].start_timesteps == 0 and records[2].end_timesteps >= state.configs[2].total_timesteps
    for stage in (1, 2):
        assert verify(state.stage_dir(stage) / RUN_MANIFEST_NAME) == []
    assert verify(state.run_dir / RUN_MANIFEST_NAME) == []


def test_a_stage_file_sets_the_handoff(tmp_path):
    base = td3_stage(_tiny_configs()[2])
    config = stage_config_from_dict(base, "stage2.yaml")
    assert config.handoff is not None and config.handoff.critic_warmup_steps == 400 and config.handoff.distil_epochs == 5
    assert stage_config_from_dict(config.to_dict(), "again") == config
    without = {key: value for key, value in base.items() if key != "handoff"}
    assert "handoff" not in stage_config_from_dict(without, "stage2.yaml").to_dict()
    with pytest.raises(ConfigError, match=r"^stage2.yaml: unknown key 'handoff.critic_steps' \(expected one of: transitions"):
        stage_config_from_dict({**base, "handoff": {"critic_steps": 1}}, "stage2.yaml")
    with pytest.raises(ConfigError, match=r"^stage2.yaml: handoff.critic_warmup_rounds: expected > 0, got 0$"):
        stage_config_from_dict({**base, "handoff": {"critic_warmup_rounds": 0}}, "stage2.yaml")


def test_a_mid_stage_resume_keeps_the_replay_buffer(ppo_then_td3, caplog):
    state, _ = ppo_then_td3
    checkpoints = state.stage_dir(2) / "checkpoints"
    latest = TD3.load(checkpoints / "latest.zip")
    # the buffer was saved beside latest.zip, at its step: the 64 seeded transitions and the stage's own
    (saved,) = checkpoints.glob("replay_buffer_*.pkl")
    assert saved.name == f"replay_buffer_{latest.num_timesteps}.pkl"
    runner = CurriculumRunner(state, progress=False, eval_episodes=1)
    assert latest.replay_buffer.size() == 0  # what SB3's load gives
    caplog.set_level(logging.INFO, logger="sb3_ext")
    runner._restore_replay_buffer(2, latest)
    expected = 64 + state.configs[2].total_timesteps
    assert latest.replay_buffer.size() == min(expected, TD3_SETTINGS["buffer_size"])
    assert "replay buffer restored" in caplog.text
    # an older checkpoint (its buffer was not kept): re-seeded from the hand-over recording, said so
    (older,) = [path for path in checkpoints.glob("checkpoint_*.zip") if str(latest.num_timesteps) not in path.name][:1]
    model = TD3.load(older)
    runner._restore_replay_buffer(2, model)
    assert model.replay_buffer.size() == 64
    recorded = read_manifest(state.stage_dir(1) / "handoff")["n_transitions"]
    assert recorded == 64 and "re-seeded with the 64 hand-over transitions" in caplog.text


def test_eval_only_outside_a_run_finds_the_algorithm_in_the_zip(ppo_then_td3, tmp_path, capsys):
    state, _ = ppo_then_td3
    loose = tmp_path / "somewhere" / "td3_model.zip"
    loose.parent.mkdir()
    shutil.copy(state.final_model(2), loose)
    # the stage files of this folder train PPO: the zip, not the file, says TD3
    config_dir = tmp_path / "stages"
    config_dir.mkdir()
    fixed = {"environment": {"agents": {"mode": "fixed"}}}
    for stage, config in _tiny_configs({1: fixed, 2: fixed, 3: fixed}).items():
        (config_dir / STAGE_FILES[stage]).write_text(yaml.safe_dump(config.to_dict()))
    out = tmp_path / "evals"
    argv = ["--eval-only", "--checkpoint", str(loose), "--stage", "2", "--config-dir", str(config_dir),
            "--output", str(out), "--eval-episodes", "1"]  # fmt: skip
    assert main(argv) == 0
    (report,) = out.glob("eval_stage2_*.json")
    data = json.loads(report.read_text())
    assert data["algo"] == "td3" and data["config"].get("algo") is None  # PPO stage settings, TD3 model
    assert "(td3) on stage 2" in capsys.readouterr().out


def test_eval_only_and_resume_across_algorithms(ppo_then_td3, tmp_path, capsys):
    state, _ = ppo_then_td3
    out = tmp_path / "evals"
    assert main(["--eval-only", "--checkpoint", str(state.final_model(2)), "--output", str(out), "--eval-episodes", "1"]) == 0
    (report,) = out.glob("eval_stage2_*.json")
    assert json.loads(report.read_text())["config"]["algo"] == "td3"
    # resuming from stage 1's final model hands over to TD3 again
    assert (
        main(
            [
                "--resume-from",
                str(state.final_model(1)),
                "--stage",
                "2",
                "--no-progress",
                "--eval-episodes",
                "1",
                "--vec-env",
                "dummy",
            ]
        )
        == 0
    )
    assert RunState.load(state.run_dir).records[2].status == "done"
    assert isinstance(TD3.load(state.final_model(2)), TD3) and isinstance(PPO.load(state.final_model(1)), PPO)
    capsys.readouterr()
