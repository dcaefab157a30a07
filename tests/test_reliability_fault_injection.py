"""Kill a quick curriculum run with SIGKILL at random moments and resume it each time.

The finished run must look as if it had never been killed: every stage done once with its exact
budget, every manifest verifying, no temporary files, no step logged twice in metrics.json or
TensorBoard.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from tensorboard.compat.proto import event_pb2

from sb3_ext.callbacks import verify
from sb3_ext.callbacks.manifest import RUN_MANIFEST_NAME
from sb3_ext.curriculum.config import STAGE_FILES
from sb3_ext.curriculum.event_files import _records
from sb3_ext.curriculum.presets import override
from sb3_ext.curriculum.state import RunState

from test_curriculum_runner import _tiny_configs

BUDGET = 256
CLI = "import sys; from sb3_ext.curriculum.cli import main; sys.exit(main(sys.argv[1:]))"


def _start(argv, output):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    common = ["--no-progress", "--vec-env", "dummy", "--eval-episodes", "1"]
    return subprocess.Popen([sys.executable, "-c", CLI, *argv, *common], cwd=output, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _resume_point(run_dir: Path) -> Path:
    """Where a user continues a killed run: the unfinished stage's latest.zip, else the last final model."""
    state = RunState.load(run_dir)
    for stage in (1, 2, 3):
        record = state.records.get(stage)
        if record is None or record.status != "done":
            latest = state.stage_dir(stage) / "checkpoints" / "latest.zip"
            if record is not None and record.status != "pending" and latest.is_file():
                return latest
            return state.final_model(stage - 1)
    raise AssertionError("nothing left to resume")


def _tensorboard_steps(folder: Path) -> dict[str, list[int]]:
    steps = defaultdict(list)
    for path in folder.glob("events.out.tfevents.*"):
        for record in _records(path.read_bytes()):
            event = event_pb2.Event()
            event.ParseFromString(record[12:-4])
            for value in event.summary.value:
                steps[value.tag].append(event.step)
    return steps


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_leaves_a_clean_complete_run(tmp_path):
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    for stage, config in _tiny_configs().items():
        config = override(config, {"total_timesteps": BUDGET}, "test")
        (config_dir / STAGE_FILES[stage]).write_text(yaml.safe_dump(config.to_dict()))
    output = tmp_path / "runs"
    output.mkdir()
    rng = random.Random(16)

    process = _start(["--config-dir", str(config_dir), "--output", str(output), "--seed", "0"], output)
    kills = 0
    while True:
        # Let the session get past its first checkpoint, then kill it at a random moment.
        deadline = time.monotonic() + 120
        while process.poll() is None and not list(output.glob("run_*/stage*/checkpoints/latest.zip")):
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        if kills < 4:
            time.sleep(rng.uniform(0.0, 4.0))
        if kills < 4 and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        else:
            assert process.wait(timeout=600) == 0, process.stderr.read()
            (run_dir,) = output.glob("run_*")
            if (
                all(r.status == "done" for r in RunState.load(run_dir).records.values())
                and len(RunState.load(run_dir).records) == 3
            ):
                break
        (run_dir,) = output.glob("run_*")
        process = _start(["--resume-from", str(_resume_point(run_dir))], output)
    assert kills >= 2

    state = RunState.load(run_dir)
    for stage in (1, 2, 3):
        record = state.records[stage]
        assert record.status == "done" and record.end_timesteps - record.start_timesteps == BUDGET
        stage_dir = state.stage_dir(stage)
        assert verify(stage_dir / RUN_MANIFEST_NAME) == []
        metrics = json.loads((stage_dir / "metrics.json").read_text())
        for key, entry in metrics.items():
            assert entry["steps"] == sorted(set(entry["steps"])), key
        for tag, steps in _tensorboard_steps(stage_dir / "tensorboard").items():
            assert len(steps) == len(set(steps)), tag
    assert state.records[2].start_timesteps == state.records[1].end_timesteps
    assert verify(run_dir / RUN_MANIFEST_NAME) == []
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [row["status"] for row in summary["stages"].values()] == ["done"] * 3


def test_event_files_are_trimmed_to_the_resumed_step(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from sb3_ext.curriculum.event_files import trim_event_files

    writer = SummaryWriter(str(tmp_path))
    for step in range(1, 11):
        writer.add_scalar("rollout/ep_rew_mean", float(step), step)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    path.write_bytes(path.read_bytes() + b"\x07\x00")  # a record cut short by a kill
    assert trim_event_files(tmp_path, 5) == 5
    assert _tensorboard_steps(tmp_path) == {"rollout/ep_rew_mean": [1, 2, 3, 4, 5]}
    assert trim_event_files(tmp_path, 5) == 0
    # TensorBoard's own reader still reads the trimmed file
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    assert [event.step for event in accumulator.Scalars("rollout/ep_rew_mean")] == [1, 2, 3, 4, 5]
