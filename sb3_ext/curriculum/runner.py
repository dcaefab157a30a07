"""Run curriculum stages: train, transfer, resume, evaluate, and write the run's files.

Layout of a run (``<output>/run_<timestamp>/``)::

    run_state.json    settings and per-stage progress (what --resume-from reads)
    summary.json      per stage: steps, wall time, final evaluation of the policy and the neutral policy
    run_manifest.json sha256 and size of every file of the run
    stageN/
        checkpoints/  best.zip, latest.zip, checkpoint_<steps>.zip
        logs/training.log
        tensorboard/  events; the step axis is the model's num_timesteps, continuous over stages
        metrics.json, training_curves.png
        stageN_final.zip
        run_manifest.json
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import re
import shlex
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_ext.callbacks.artifacts import RunArtifacts, replay_buffer_path, save_replay_buffer
from sb3_ext.callbacks.manifest import write_manifest
from sb3_ext.common.atomic import atomic_save_model, atomic_write_json, remove_temporaries
from sb3_ext.common.rescue import RunLock, TrainingFailed, save_on_exception
from sb3_ext.curriculum.algorithms import (
    DEFAULT_ALGO,
    algorithm_class,
    load_algorithm_for_stage,
    new_algorithm_model,
)
from sb3_ext.curriculum.config import STAGE_FILES, ConfigError, HandoffConfig, StageConfig
from sb3_ext.curriculum.curves import LATTICE_PANELS
from sb3_ext.curriculum.envs import make_eval_env, make_training_env
from sb3_ext.curriculum.ess import ESSEarlyStopping
from sb3_ext.curriculum.evaluation import compare
from sb3_ext.curriculum.event_files import trim_event_files
from sb3_ext.curriculum.handoff import hand_off, record_handoff
from sb3_ext.curriculum.interrupt import StopOnSignal
from sb3_ext.curriculum.morphology import FINAL_INFO_KEYS, MorphologyLogger
from sb3_ext.curriculum.state import RunState
from sb3_ext.curriculum.transfer import load_for_stage, new_model
from sb3_ext.data.reader import load_chunks

log = logging.getLogger(__name__)

#: ESS checks every this many environment steps (the stage files' patience counts these).
ESS_CHECK_FREQ = 1000
#: Evaluations and checkpoints per stage (at least one rollout apart).
EVALUATIONS_PER_STAGE = 10
CHECKPOINTS_PER_STAGE = 4


def agents_per_lattice(config: StageConfig) -> int:
    """VecEnv slots one lattice takes: its agents in ``per_column`` mode, else 1."""
    from sb3_ext.envs.lattice.swarm_env import agents_for

    env = config.environment
    return agents_for(env.lattice_size, env.agents.density) if env.per_column else 1


def new_run_dir(output: str | Path) -> Path:
    """Create ``<output>/run_<YYYYmmdd-HHMMSS>`` (suffixed ``_2``, ``_3``... if taken)."""
    base = Path(output) / datetime.datetime.now().strftime("run_%Y%m%d-%H%M%S")
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}_{n}")


def check_model_file(path: str | Path, flag: str) -> Path:
    """A saved SB3 model must be an existing zip archive; say which flag named it otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: file not found")
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{flag} {path}: not a saved model (.zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # reads every member and checks its CRC
            members = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ConfigError(f"{flag} {path}: damaged or truncated archive ({error})") from None
    if damaged is not None:
        raise ConfigError(f"{flag} {path}: damaged or truncated archive (member {damaged!r} fails its CRC check)")
    if not {"data", "policy.pth"} <= members:
        raise ConfigError(f"{flag} {path}: not a saved SB3 model (the archive has no 'data' and 'policy.pth')")
    return path


def load_model_file(cls: Any, path: Path, flag: str, **kwargs: Any) -> Any:
    """``cls.load(path, **kwargs)`` for a file :func:`check_model_file` accepted; a file SB3 still
    cannot load is one ConfigError naming the flag, not a traceback."""
    try:
        return cls.load(path, **kwargs)
    except (AssertionError, KeyError, ValueError, TypeError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(
            f"{flag} {path}: not loadable as a {cls.__name__} model ({type(error).__name__}: {error})".splitlines()[0]
        ) from None


def stage_of(path: Path, run_dir: Path) -> int:
    """The stage a file inside a run belongs to, from its ``stageN/`` folder."""
    relative = path.resolve().relative_to(run_dir.resolve())
    match = re.fullmatch(r"stage([123])", relative.parts[0]) if len(relative.parts) > 1 else None
    if match is None:
        raise ConfigError(f"{path}: not inside a stageN/ folder of run {run_dir}")
    return int(match.group(1))


class CurriculumRunner:
    """Trains the stages of one run and keeps its state, manifests and summary up to date.

    :param state: the run (its folder, configs, seed and progress).
    :param device: torch device for PPO.
    :param progress: show SB3's progress bar.
    :param eval_episodes: deterministic episodes of each stage's final evaluation (policy and
        neutral policy) and of each periodic evaluation.
    :param env_id: environment id (default: the stage file's; tests substitute a variant).
    :param command: command line recorded in the manifests.
    :param subprocesses: run each stage's ``n_envs`` environments in SubprocVecEnv workers
        (False: DummyVecEnv in this process).
    :param eval_freq: environment steps between evaluations (None: ``EVALUATIONS_PER_STAGE`` per stage).
    :param checkpoint_freq: environment steps between checkpoints (None: ``CHECKPOINTS_PER_STAGE`` per stage).
    :param patience: end a stage when more than this many evaluations in a row bring no better mean
        reward (None: never).
    """

    def __init__(
        self,
        state: RunState,
        device: str = "cpu",
        progress: bool = True,
        eval_episodes: int = 5,
        env_id: str | None = None,
        command: str | None = None,
        subprocesses: bool = True,
        eval_freq: int | None = None,
        checkpoint_freq: int | None = None,
        patience: int | None = None,
    ):
        self.state = state
        self.device = device
        self.progress = progress
        self.eval_episodes = eval_episodes
        self.env_id = env_id
        self.command = command if command is not None else shlex.join([sys.executable, *sys.argv])
        self.subprocesses = subprocesses
        self.eval_freq = eval_freq
        self.checkpoint_freq = checkpoint_freq
        self.patience = patience
        self.stopper = StopOnSignal()

    # --- the run -----------------------------------------------------------------------------

    def run(self, stages: list[int], init_model: Path | None = None, resume_stage: bool = False) -> int:
        """Train ``stages`` in order; each starts from the previous one's final model.

        :param init_model: model the first stage starts from (None: from scratch).
        :param resume_stage: ``init_model`` is a mid-stage checkpoint of the first stage, whose
            remaining budget is trained (otherwise the first stage starts a full budget).
        :return: process exit status: 0, or 130/143 when stopped by SIGINT/SIGTERM.
        """
        with RunLock(self.state.run_dir, "run"):
            for leftover in remove_temporaries(self.state.run_dir):
                log.info("removed %s, left by a session killed while writing", leftover)
            self._supersede_after(stages[0])
            self.state.save()
            try:
                with self.stopper:
                    for index, stage in enumerate(stages):
                        start_from = init_model if index == 0 else self.state.final_model(stages[index - 1])
                        finished = self.train_stage(stage, start_from, resume=resume_stage and index == 0)
                        if not finished or self.stopper.received is not None:
                            break
            finally:
                with contextlib.suppress(OSError):  # the error that stopped training is the one to report
                    summary = self.write_summary()
                    print(format_summary(summary))
                    write_manifest(
                        self.state.run_dir,
                        config=self._configs_dict(),
                        seed=self.state.seed,
                        command=self.command,
                        extra={"kind": "run"},
                    )
        if self.stopper.received is not None:
            print(f"stopped by {self.stopper.received.name}; resume with:\n  {self.resume_hint()}")
        return self.stopper.exit_code

    def _supersede_after(self, stage: int) -> None:
        """Stages after ``stage`` were built on the model it is about to replace: their results no longer hold."""
        for later, record in self.state.records.items():
            if later > stage and record.status != "pending":
                log.warning(
                    "stage %d: its results were built on the stage-%d model being replaced; marked superseded", later, stage
                )
                record.status, record.result = "superseded", None

    def resume_hint(self) -> str:
        """The command that continues this run."""
        for stage in sorted(self.state.records, reverse=True):
            record = self.state.records[stage]
            if record.status in ("interrupted", "failed"):
                checkpoint = record.rescue or self.state.stage_dir(stage) / "checkpoints" / "latest.zip"
                return f"sb3-ext-curriculum --resume-from {checkpoint}"
            if record.status == "done":
                return f"sb3-ext-curriculum --resume-from {self.state.final_model(stage)}"
        return "sb3-ext-curriculum  (nothing finished yet: start again)"

    def _configs_dict(self) -> dict[str, Any]:
        return {f"stage{stage}": config.to_dict() for stage, config in sorted(self.state.configs.items())}

    # --- one stage ---------------------------------------------------------------------------

    def train_stage(self, stage: int, start_from: Path | None, resume: bool = False) -> bool:
        """Train one stage to the end of its budget (or an ESS stop, or a signal).

        :return: True when the stage is done (final model saved and evaluated).
        """
        config = self.state.configs[stage]
        record = self.state.record(stage)
        stage_dir = self.state.stage_dir(stage)
        seed = self.state.seed + 1000 * stage
        session_start = time.perf_counter()
        rollout = (config.ppo.n_steps if config.ppo is not None else 1) * config.n_envs

        env = make_training_env(config, config.n_envs, seed=seed, env_id=self.env_id, subprocesses=self.subprocesses)
        eval_env = make_eval_env(config, seed=seed + 500, env_id=self.env_id)
        try:
            model = self._stage_model(stage, config, env, seed, start_from)
            if resume:
                if record.start_timesteps is None:
                    raise ConfigError(f"{start_from}: run state has no start for stage {stage}; cannot resume it")
                self._restore_replay_buffer(stage, model)
            else:
                # A new stage: its rollout statistics and budget start here.
                model.ep_info_buffer = None
                record.start_timesteps = model.num_timesteps
                record.wall_time, record.train_time, record.stop_reason, record.result = 0.0, 0.0, None, None
            target = record.start_timesteps + config.total_timesteps
            # Seeded from the steps already done, so that a resumed session does not replay the
            # random streams (episodes, action noise) of the first one.
            model.set_random_seed(seed + model.num_timesteps - record.start_timesteps)
            record.status, record.rescue = "running", None
            self.state.save()
            log.info(
                "stage %d: %s lattice, steps %d -> %d, from %s",
                stage,
                "x".join(map(str, config.environment.lattice_size)),
                model.num_timesteps,
                target,
                start_from if start_from is not None else "scratch",
            )

            # A killed session may have logged past the step this one starts from.
            trim_event_files(stage_dir / "tensorboard", model.num_timesteps)
            model.set_logger(configure(str(stage_dir / "tensorboard"), ["tensorboard"]))
            # Checks every ESS_CHECK_FREQ lattice steps: a per_column step counts one timestep per agent.
            ess_check_freq = ESS_CHECK_FREQ * agents_per_lattice(config)
            ess = ESSEarlyStopping(config.ess_threshold, config.ess_patience, check_freq=ess_check_freq)
            artifacts = RunArtifacts(
                str(stage_dir),
                eval_env=eval_env,
                eval_freq=self.eval_freq or max(rollout, config.total_timesteps // EVALUATIONS_PER_STAGE),
                n_eval_episodes=self.eval_episodes,
                checkpoint_freq=self.checkpoint_freq or max(rollout, config.total_timesteps // CHECKPOINTS_PER_STAGE),
                patience=self.patience,
                eval_info_keys=FINAL_INFO_KEYS,
                panels=LATTICE_PANELS,
                save_replay_buffer=True,  # a resumed off-policy stage continues with its buffer
            )
            remaining = target - model.num_timesteps
            train_start = time.perf_counter()
            if remaining > 0:
                self._learn(model, stage, remaining, CallbackList([self.stopper, ess, MorphologyLogger(), artifacts]))
            train_time = time.perf_counter() - train_start
            model.logger.close()
            record.end_timesteps = model.num_timesteps

            interrupted = self.stopper.received is not None and model.num_timesteps < target and not ess.stopped
            if interrupted:
                record.status = "interrupted"
            else:
                record.stop_reason = ess.stop_message or None
                if artifacts.stopped_early_at is not None:
                    record.stop_reason = (
                        f"early stop at step {artifacts.stopped_early_at}: more than {self.patience} "
                        "evaluations without a better mean reward"
                    )
                atomic_save_model(model, self.state.final_model(stage))
                record.result = self._final_evaluation(model, config, seed)
                following = self.state.configs.get(stage + 1)
                if following is not None and following.algo != config.algo:
                    # The next stage trains another algorithm: it starts from this policy's transitions.
                    handoff = following.handoff or HandoffConfig()
                    record_handoff(
                        model,
                        env,
                        self.handoff_dataset(stage),
                        min(handoff.transitions, config.total_timesteps),
                        env_id=self.env_id,
                        epsilon=handoff.recording_epsilon,
                        seed=seed,
                    )
                record.status = "done"
            record.train_time += train_time
            record.wall_time += time.perf_counter() - session_start
            self.state.save()
            write_manifest(
                stage_dir,
                config=config.to_dict(),
                seed=self.state.seed,
                command=self.command,
                extra={"stage": stage, "num_timesteps": model.num_timesteps},
            )
            return not interrupted
        finally:
            env.close()
            eval_env.close()

    def _learn(self, model: Any, stage: int, steps: int, callback: CallbackList) -> None:
        """``model.learn``; if it dies of an exception, save the model, mark the stage failed and
        raise :class:`TrainingFailed` with the command that continues from the saved model."""
        stage_dir, record = self.state.stage_dir(stage), self.state.record(stage)
        places = (stage_dir / "checkpoints" / "latest.zip", stage_dir / "rescue.zip", self.state.run_dir / "rescue.zip")
        try:
            with save_on_exception(model, *places) as rescue:
                model.learn(steps, callback=callback, reset_num_timesteps=False, progress_bar=self.progress)
        except Exception as error:
            record.status, record.end_timesteps = "failed", model.num_timesteps
            record.rescue = str(rescue.path) if rescue.path is not None else None
            if rescue.path is not None and isinstance(model, OffPolicyAlgorithm):
                with contextlib.suppress(OSError):  # without it, a resume re-seeds from the hand-over
                    save_replay_buffer(model, stage_dir / "checkpoints")
            with contextlib.suppress(OSError):
                self.state.save()
            saved = (
                f"model at step {model.num_timesteps} saved to {rescue.path}; resume with: {self.resume_hint()}"
                if rescue.path is not None
                else f"the model could not be saved ({'; '.join(rescue.failures)})"
            )
            raise TrainingFailed(f"training failed ({type(error).__name__}: {error}); {saved}".replace("\n", " ")) from error
        finally:
            for child in callback.callbacks:
                if isinstance(child, RunArtifacts):
                    child.release()

    def _restore_replay_buffer(self, stage: int, model: Any) -> None:
        """An off-policy model resumed mid-stage continues with the replay buffer saved with its
        checkpoint; failing that (an older checkpoint than the newest buffer, a run from before
        buffers were saved), with the hand-over transitions the stage was seeded with."""
        if not isinstance(model, OffPolicyAlgorithm) or model.replay_buffer is None:
            return
        stage_dir = self.state.stage_dir(stage)
        saved = replay_buffer_path(stage_dir / "checkpoints", model.num_timesteps)
        if saved.is_file():
            model.load_replay_buffer(saved)
            log.info("stage %d: replay buffer restored from %s (%d transitions)", stage, saved, model.replay_buffer.size())
            return
        handoff = stage_dir / "handoff.json"
        if not handoff.is_file():
            log.warning("stage %d: no replay buffer saved at step %d; it starts empty", stage, model.num_timesteps)
            return
        dataset = self.handoff_dataset(int(json.loads(handoff.read_text(encoding="utf-8"))["from_stage"]))
        seeded = load_chunks(model.replay_buffer, dataset)
        log.warning(
            "stage %d: no replay buffer saved at step %d; re-seeded with the %d hand-over transitions of %s "
            "(what the stage collected since then is not in it)",
            stage,
            model.num_timesteps,
            seeded,
            dataset,
        )

    def handoff_dataset(self, stage: int) -> Path:
        """Where stage ``stage`` records its transitions for a following stage of another algorithm."""
        return self.state.stage_dir(stage) / "handoff"

    def _stage_model(self, stage: int, config: StageConfig, env, seed: int, start_from: Path | None):
        """The stage's model: fresh, loaded from ``start_from`` (same algorithm), or handed over
        from it (another algorithm: a new model, its buffer and actor started from the recording)."""
        previous = self.state.configs[stage_of(start_from, self.state.run_dir)] if start_from is not None else None
        ppo = config.ppo
        if config.algo == DEFAULT_ALGO and ppo is None:  # the loader requires it; checked here for the types
            raise ConfigError(f"stage {stage}: a {DEFAULT_ALGO} stage needs its ppo section")
        if start_from is None or previous is None or previous.algo == config.algo:
            if ppo is not None and config.algo == DEFAULT_ALGO:
                if start_from is None:
                    return new_model(ppo, env, seed=seed, device=self.device)
                return load_for_stage(start_from, env, ppo, device=self.device)
            if start_from is None:
                return new_algorithm_model(config.algo, config.algo_settings, env, seed, self.device)
            return load_algorithm_for_stage(config.algo, config.algo_settings, start_from, env, self.device)
        previous_stage = stage_of(start_from, self.state.run_dir)
        dataset = self.handoff_dataset(previous_stage)
        if not (dataset / "manifest.json").is_file():
            raise ConfigError(f"{dataset}: stage {previous_stage} recorded no transitions to hand over to {config.algo}")
        teacher = algorithm_class(previous.algo, str(start_from)).load(start_from, device=self.device)
        # A new algorithm starts its own step count, so that its schedules (exploration, learning
        # rate) and learning_starts run from this stage's start.
        model = (
            new_model(ppo, env, seed=seed, device=self.device)
            if ppo is not None and config.algo == DEFAULT_ALGO
            else new_algorithm_model(config.algo, config.algo_settings, env, seed, self.device)
        )
        report = hand_off(model, teacher, dataset, config.handoff, seed=seed)
        atomic_write_json(
            self.state.stage_dir(stage) / "handoff.json",
            {
                "from_stage": previous_stage,
                "from_algo": previous.algo,
                "to_algo": config.algo,
                "dataset": str(dataset),
                **report.to_dict(),
            },
        )
        return model

    def _final_evaluation(self, model, config: StageConfig, seed: int) -> dict[str, Any]:
        # Same seed for all: neutral physics and the hand rule run on the same random streams.
        result = compare(model, config, self.eval_episodes, seed=seed + 700, env_id=self.env_id)
        log.info("stage evaluation: %s", {name: result[name] for name in ("policy", "neutral", "hand_rule")})
        return result

    # --- summary -----------------------------------------------------------------------------

    def write_summary(self) -> dict[str, Any]:
        """summary.json from the run state (every stage so far, over all sessions)."""
        stages = {}
        for stage, record in sorted(self.state.records.items()):
            config = self.state.configs[stage]
            steps = None
            if record.start_timesteps is not None and record.end_timesteps is not None:
                steps = record.end_timesteps - record.start_timesteps
            result = record.result or {}
            stages[str(stage)] = {
                "status": record.status,
                "lattice_size": list(config.environment.lattice_size),
                "steps": steps,
                "budget": config.total_timesteps,
                "wall_time_s": round(record.wall_time, 2),
                "train_time_s": round(record.train_time, 2),
                "steps_per_s": round(steps / record.train_time, 1) if steps and record.train_time else None,
                "stop_reason": record.stop_reason,
                "policy": result.get("policy"),
                "neutral": result.get("neutral"),
                "hand_rule": result.get("hand_rule"),
            }
        summary = {"run_dir": str(self.state.run_dir), "seed": self.state.seed, "preset": self.state.preset, "stages": stages}
        atomic_write_json(self.state.run_dir / "summary.json", summary)
        return summary


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_summary(summary: dict[str, Any]) -> str:
    """The short table printed at the end of a run: W of the policy, the hand rule (best gain at
    ESS >= 0.5) and neutral physics, at the neutral films' thickness."""
    header = (
        f"{'stage':<6}{'lattice':<11}{'status':<12}{'steps':>10}{'wall':>8}{'steps/s':>9}"
        f"{'W policy':>10}{'W hand':>8}{'W neutral':>11}{'vs neutral':>12}{'ESS':>7}{'height':>8}"
    )
    lines = [f"run: {summary['run_dir']}", header, "-" * len(header)]
    for stage, row in summary["stages"].items():
        policy, neutral, hand = row["policy"] or {}, row["neutral"] or {}, row.get("hand_rule") or {}
        w_policy, w_neutral = policy.get("final_roughness"), neutral.get("final_roughness")
        change = None if w_policy is None or not w_neutral else 100.0 * (w_policy / w_neutral - 1.0)
        lines.append(
            f"{stage:<6}{'x'.join(map(str, row['lattice_size'])):<11}{row['status']:<12}"
            f"{_fmt(row['steps'], 'd'):>10}{row['wall_time_s']:>7.0f}s{_fmt(row['steps_per_s'], '.0f'):>9}"
            f"{_fmt(w_policy, '.3f'):>10}{_fmt(hand.get('final_roughness'), '.3f'):>8}{_fmt(w_neutral, '.3f'):>11}"
            f"{_fmt(change, '+.1f') + '%':>12}{_fmt(policy.get('mean_ess'), '.3f'):>7}"
            f"{_fmt(neutral.get('mean_height'), '.2f'):>8}"
        )
        if row["stop_reason"]:
            lines.append(f"      {row['stop_reason']}")
    return "\n".join(lines)


__all__ = ["STAGE_FILES", "CurriculumRunner", "check_model_file", "format_summary", "new_run_dir", "stage_of"]
