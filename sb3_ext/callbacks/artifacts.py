"""Everything a training run leaves on disk: checkpoints, a text log, metrics and curves.

Layout under ``save_dir``::

    checkpoints/best.zip              best deterministic evaluation (``eval/mean_reward``)
    checkpoints/latest.zip            the model at the last checkpoint or at the end of training
    checkpoints/checkpoint_<steps>.zip  every ``checkpoint_freq`` environment steps
    checkpoints/replay_buffer_<steps>.pkl  with ``save_replay_buffer``: the replay buffer of the
                                      newest latest.zip (an off-policy model's; older ones removed)
    logs/training.log                 the logger's tables and the ``sb3_ext`` log messages
    metrics.json                      every numeric scalar the logger dumped, against steps
    training_curves.png               the curve panels (drawn when training ends)

Models, ``metrics.json`` and the PNG are written atomically (temporary file + rename);
``training.log`` is append-only. TensorBoard events come from the model's own logger
(``tensorboard_log=`` or ``model.set_logger``), so they are not duplicated here.
"""

from __future__ import annotations

import json
import logging
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    ConvertCallback,
    EvalCallback,
    EveryNTimesteps,
    StopTrainingOnNoModelImprovement,
)
from stable_baselines3.common.logger import HumanOutputFormat, KVWriter
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.callbacks.curves import DEFAULT_PANELS, CurvePanel, plot_training_curves
from sb3_ext.common.atomic import atomic_open, atomic_save_model, atomic_write_json
from sb3_ext.common.episode_info import FinalInfoCollector

log = logging.getLogger(__name__)

#: The ``logging`` hierarchy whose messages RunArtifacts copies into training.log.
PACKAGE_LOGGER = "sb3_ext"


def replay_buffer_path(checkpoint_dir: str | Path, num_timesteps: int) -> Path:
    """Where RunArtifacts (``save_replay_buffer=True``) keeps the buffer of a model saved at step ``num_timesteps``."""
    return Path(checkpoint_dir) / f"replay_buffer_{num_timesteps}.pkl"


def save_replay_buffer(model: OffPolicyAlgorithm, checkpoint_dir: str | Path) -> Path | None:
    """Save ``model``'s replay buffer atomically at :func:`replay_buffer_path` and remove older ones.

    Pickled as SB3's ``save_replay_buffer`` does (``load_replay_buffer`` reads it), but through a
    temporary file and a rename: SB3's writer closes the file before it could be synced.
    """
    if model.replay_buffer is None:
        return None
    path = replay_buffer_path(checkpoint_dir, model.num_timesteps)
    with atomic_open(path, "wb") as handle:
        pickle.dump(model.replay_buffer, handle, protocol=pickle.HIGHEST_PROTOCOL)
    for older in Path(checkpoint_dir).glob("replay_buffer_*.pkl"):
        if older != path:
            older.unlink(missing_ok=True)
    return path


class MetricsRecorder(KVWriter):
    """An SB3 logger output that keeps every numeric scalar it is given, with its step.

    :param history: scalar name -> {"steps": [...], "values": [...]}; appended to in place.
    :param on_write: called after each dump (e.g. to persist the history).
    """

    def __init__(self, history: dict[str, dict[str, list]], on_write: Callable[[], None] | None = None):
        self.history = history
        self.on_write = on_write

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        for key, value in key_values.items():
            excluded = key_excluded.get(key)
            if excluded is not None and "json" in excluded:
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                continue  # text, histograms, figures, videos: TensorBoard's business
            entry = self.history.setdefault(key, {"steps": [], "values": []})
            entry["steps"].append(int(step))
            entry["values"].append(float(value))
        if self.on_write is not None:
            self.on_write()

    def close(self) -> None:
        pass


def load_metrics(path: str | Path) -> dict[str, dict[str, list]]:
    """Read a metrics.json written by :class:`RunArtifacts` (empty if there is none)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a valid metrics.json ({error.msg} at line {error.lineno})") from None


def truncate_metrics(history: dict[str, dict[str, list]], up_to_step: int) -> dict[str, dict[str, list]]:
    """The points at or before ``up_to_step``: a run resumed from an older checkpoint rewrites its future."""
    truncated = {}
    for key, entry in history.items():
        keep = [i for i, step in enumerate(entry["steps"]) if step <= up_to_step]
        if keep:
            truncated[key] = {"steps": [entry["steps"][i] for i in keep], "values": [entry["values"][i] for i in keep]}
    return truncated


class _InfoEvalCallback(EvalCallback):
    """SB3's EvalCallback that also records the mean of episode-end infos as ``eval/<key>``."""

    def __init__(self, *args: Any, info_keys: Sequence[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.collector = FinalInfoCollector(info_keys)

    def _on_step(self) -> bool:
        self.collector.clear()
        return super()._on_step()

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if not locals_["done"]:
            return
        self.collector(locals_, globals_)
        # Recording the running mean leaves the mean over all evaluation episodes in the logger
        # when EvalCallback dumps it together with eval/mean_reward.
        for key in self.collector.keys:
            value = self.collector.mean(key)
            if value is not None:
                self.logger.record(f"eval/{key}", value)


class RunArtifacts(CallbackList):
    """Checkpoints (best / latest / periodic), training.log, metrics.json and training_curves.png.

    Works for any SB3 model: the curves default to :data:`~sb3_ext.callbacks.curves.DEFAULT_PANELS`
    (reward, losses, exploration, value estimates), and an environment's own episode-end infos
    are evaluated only when named in ``eval_info_keys`` (the lattice curriculum passes its
    roughness/coverage keys and panels).

    Built from SB3's own pieces: ``EvalCallback`` picks the best model, ``EveryNTimesteps``
    triggers the periodic checkpoints, and a logger output records every scalar for metrics.json.
    Resuming in the same ``save_dir`` continues the files: metrics after the resumed step are
    dropped, best.zip is only replaced by a model better than every one evaluated before,
    training.log is appended to.

    From an rl-zoo3 YAML::

        callback:
          - sb3_ext.callbacks.RunArtifacts:
              save_dir: logs/artifacts
              eval_env: LatticeGrowth-v0
              eval_freq: 10000
              panels:  # optional; default: reward, loss, exploration, value estimates
                - {title: Reward, lines: [[rollout/ep_rew_mean, training], [eval/mean_reward, evaluation]]}

    :param save_dir: folder for all artifacts.
    :param eval_env: environment (or registered id, made with ``eval_env_kwargs``) for the
        deterministic evaluations that choose ``best.zip``; None skips evaluation and best.zip.
    :param eval_env_kwargs: keyword arguments for ``gymnasium.make`` when ``eval_env`` is an id.
    :param eval_freq: environment steps (all envs together) between evaluations.
    :param n_eval_episodes: episodes per evaluation.
    :param checkpoint_freq: environment steps between ``checkpoint_<steps>.zip`` files (each
        also refreshes latest.zip). metrics.json is rewritten at every logger dump; the curves
        are drawn when training ends or is stopped (TensorBoard is the live view).
    :param eval_info_keys: episode-end info keys averaged into ``eval/<key>`` (none by default).
    :param panels: the panels of training_curves.png: :class:`~sb3_ext.callbacks.curves.CurvePanel`
        objects or mappings with the same fields (from YAML).
    :param patience: evaluations in a row without a better mean reward that training tolerates: it
        stops at the next one (SB3's ``StopTrainingOnNoModelImprovement(max_no_improvement_evals=patience)``;
        needs ``eval_env``); None never stops.
    :param min_evals: evaluations before ``patience`` starts counting.
    :param save_replay_buffer: whenever latest.zip is written, also save an off-policy model's
        replay buffer as ``checkpoints/replay_buffer_<steps>.pkl`` (only the newest is kept), so
        that resuming from latest.zip can continue with it (``model.load_replay_buffer``).
    :param verbose: 1 to print evaluation results (they always go to the log).
    """

    def __init__(
        self,
        save_dir: str,
        eval_env: gym.Env | VecEnv | str | None = None,
        eval_env_kwargs: dict[str, Any] | None = None,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 5,
        checkpoint_freq: int = 50_000,
        eval_info_keys: Sequence[str] = (),
        panels: Sequence[CurvePanel | Mapping[str, Any]] = DEFAULT_PANELS,
        patience: int | None = None,
        min_evals: int = 0,
        save_replay_buffer: bool = False,
        verbose: int = 0,
    ):
        if eval_freq < 1 or checkpoint_freq < 1 or n_eval_episodes < 1:
            raise ValueError(
                "RunArtifacts: eval_freq, checkpoint_freq and n_eval_episodes must be >= 1, got "
                f"{eval_freq!r}, {checkpoint_freq!r}, {n_eval_episodes!r}"
            )
        self.panels = tuple(p if isinstance(p, CurvePanel) else CurvePanel.from_mapping(p) for p in panels)
        if patience is not None and (eval_env is None or not isinstance(patience, int) or patience < 1):
            raise ValueError(f"RunArtifacts: patience={patience!r} needs an eval_env and a positive integer")
        self.save_dir = Path(save_dir)
        self.checkpoint_dir = self.save_dir / "checkpoints"
        self.log_path = self.save_dir / "logs" / "training.log"
        self.metrics_path = self.save_dir / "metrics.json"
        self.curves_path = self.save_dir / "training_curves.png"
        self.eval_freq = eval_freq
        self.save_replay_buffer = save_replay_buffer
        self.history: dict[str, dict[str, list]] = {}
        self._recorder = MetricsRecorder(self.history, on_write=self.save_metrics)
        self._log_file: TextIO | None = None
        self._log_format: HumanOutputFormat | None = None
        self._log_handler: logging.Handler | None = None
        self._saved_log_level = logging.NOTSET

        children: list[BaseCallback] = []
        self.early_stopping: StopTrainingOnNoModelImprovement | None = None
        if patience is not None:
            self.early_stopping = StopTrainingOnNoModelImprovement(patience, min_evals, verbose=0)
        self.evaluation: _InfoEvalCallback | None = None
        if eval_env is not None:
            if isinstance(eval_env, str):
                eval_env = Monitor(gym.make(eval_env, **(eval_env_kwargs or {})))
            self.evaluation = _InfoEvalCallback(
                eval_env,
                callback_on_new_best=ConvertCallback(self._on_new_best),
                callback_after_eval=ConvertCallback(self._after_eval),
                n_eval_episodes=n_eval_episodes,
                deterministic=True,
                verbose=0,
                info_keys=eval_info_keys,
            )
            children.append(self.evaluation)
            if self.early_stopping is not None:
                # It reads the evaluation's best_mean_reward through its parent, as in SB3.
                self.early_stopping.parent = self.evaluation
        self.checkpointing = EveryNTimesteps(checkpoint_freq, ConvertCallback(self._on_checkpoint))
        children.append(self.checkpointing)
        self.verbose_artifacts = verbose
        self.stopped_early_at: int | None = None
        super().__init__(children)

    # --- set-up and tear-down ----------------------------------------------------------------

    def _init_callback(self) -> None:
        if self.evaluation is not None:
            # EvalCallback counts calls, each of which is n_envs environment steps.
            self.evaluation.eval_freq = max(1, self.eval_freq // self.model.n_envs)
        with warnings.catch_warnings():
            # EvalCallback warns when the eval env's VecEnv class differs from the training one
            # (Dummy vs Subproc); that only matters for VecNormalize, which we do not use here.
            warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
            super()._init_callback()
        if self.early_stopping is not None:
            self.early_stopping.init_callback(self.model)

    def _on_training_start(self) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        start = self.model.num_timesteps
        previous = load_metrics(self.metrics_path)
        self.history.clear()
        self.history.update(truncate_metrics(previous, start))
        if self.evaluation is not None and "eval/mean_reward" in previous:
            # best.zip holds the best model ever evaluated here, also one from a future this
            # resume discards; only a better model may replace it.
            self.evaluation.best_mean_reward = max(previous["eval/mean_reward"]["values"])
        # Periodic checkpoints land on multiples of checkpoint_freq, also after a resume.
        self.checkpointing.last_time_trigger = start - start % self.checkpointing.n_steps

        self._log_file = open(self.log_path, "a", encoding="utf-8")
        self._log_format = HumanOutputFormat(self._log_file)
        self._log_handler = logging.StreamHandler(self._log_file)
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        package_logger = logging.getLogger(PACKAGE_LOGGER)
        package_logger.addHandler(self._log_handler)
        # INFO messages (evaluations, checkpoints) must reach the file even when the application
        # left logging at its WARNING default; the previous level is restored at training end.
        self._saved_log_level = package_logger.level
        if not package_logger.isEnabledFor(logging.INFO):
            package_logger.setLevel(logging.INFO)
        self.logger.output_formats.extend([self._recorder, self._log_format])
        log.info("training starts at step %d; artifacts in %s", start, self.save_dir)
        super()._on_training_start()

    def _on_training_end(self) -> None:
        super()._on_training_end()
        self.save_latest()
        self.save_metrics()
        plot_training_curves(self.history, self.curves_path, self.panels)
        log.info("training ends at step %d; latest model in %s", self.model.num_timesteps, self.checkpoint_dir / "latest.zip")
        self.release()

    def release(self) -> None:
        """Detach the log file and the metrics recorder from the logger and the ``sb3_ext`` logging
        hierarchy. Training end does this; call it yourself when ``learn()`` died of an exception
        (SB3 then skips ``_on_training_end``), or the next run's messages land in this run's log.
        Calling it again does nothing."""
        if self._log_file is None or self._log_handler is None:  # never started, or released
            return
        if self._recorder in self.logger.output_formats:
            self.logger.output_formats.remove(self._recorder)
        if self._log_format in self.logger.output_formats:
            self.logger.output_formats.remove(self._log_format)
        package_logger = logging.getLogger(PACKAGE_LOGGER)
        package_logger.setLevel(self._saved_log_level)
        package_logger.removeHandler(self._log_handler)
        self._log_file.close()
        self._log_file, self._log_format, self._log_handler = None, None, None

    # --- events ------------------------------------------------------------------------------

    def save_model(self, name: str) -> Path:
        """Save the model atomically as ``checkpoints/<name>``."""
        return atomic_save_model(self.model, self.checkpoint_dir / name)

    def save_latest(self) -> Path:
        """Save ``checkpoints/latest.zip``, and with ``save_replay_buffer`` the replay buffer beside it."""
        path = self.save_model("latest.zip")
        if self.save_replay_buffer and isinstance(self.model, OffPolicyAlgorithm):
            save_replay_buffer(self.model, self.checkpoint_dir)
        return path

    def save_metrics(self) -> None:
        """Write metrics.json atomically from the history."""
        atomic_write_json(self.metrics_path, self.history)

    def _on_checkpoint(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> bool:
        path = self.save_model(f"checkpoint_{self.model.num_timesteps}.zip")
        self.save_latest()
        log.info("checkpoint %s", path.name)
        return True

    def _on_new_best(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> bool:
        assert self.evaluation is not None
        self.save_model("best.zip")
        log.info(
            "new best eval/mean_reward %.4f at step %d -> best.zip", self.evaluation.best_mean_reward, self.model.num_timesteps
        )
        return True

    def _after_eval(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> bool:
        assert self.evaluation is not None
        extras = ", ".join(
            f"{key} {value:.4f}"
            for key in self.evaluation.collector.keys
            if (value := self.evaluation.collector.mean(key)) is not None
        )
        message = f"eval at step {self.model.num_timesteps}: mean reward {self.evaluation.last_mean_reward:.4f}"
        log.info("%s%s", message, f" ({extras})" if extras else "")
        if self.verbose_artifacts >= 1:
            print(message + (f" ({extras})" if extras else ""))
        if self.early_stopping is not None and not self.early_stopping.on_step():
            self.stopped_early_at = self.model.num_timesteps
            log.info("early stop at step %d: more than %d evaluations without a better mean reward than %.4f",
                     self.model.num_timesteps, self.early_stopping.max_no_improvement_evals,
                     self.evaluation.best_mean_reward)
            return False
        return True
