"""rl-zoo3's ExperimentManager with sb3-ext's defaults and checks (used by ``sb3_ext.train``).

What changes against rl-zoo3 2.9 (everything else is inherited untouched):

- ``--conf-file`` defaults to our ``sb3_ext/hyperparams/<algo>.yml`` (rl-zoo3's own file for envs ours lacks);
- ``--optimize`` without ``--storage`` records the study in a journal file under the log folder
  instead of memory, so a search survives its process and more workers can join it;
- ``--trial-id 0`` works (rl-zoo3 tests ``if trial_id:`` and silently ignores trial 0), trials
  are looked up by number, and a missing study or trial is one clear line;
- YAML entries are checked: an unknown hyperparameter name is one clear line, not a TypeError;
- a learning rate stays a number for algorithms that declare a plain float (Phase2);
- evaluation envs get the YAML entry's ``env_kwargs`` (rl-zoo3 2.9 only passes command-line ones);
- each trial records which worker (host:pid) ran it, to follow a search spread over machines;
- multi-agent algorithms are evaluated on whole env copies (:mod:`sb3_ext.zoo.multi_agent`).
"""

from __future__ import annotations

import inspect
import os
import socket
import time
from typing import Any

import optuna
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.zoo.config import (
    ZooUsageError,
    check_entry_exists,
    check_hyperparameter_names,
    default_conf_file,
)
from sb3_ext.zoo.multi_agent import evaluation_view
from sb3_ext.zoo.registry import ZOO_ALGORITHMS
from sb3_ext.zoo.study import (
    check_storage_argument,
    describe_storage,
    join_study,
    load_existing_study,
)

DEFAULT_JOURNAL_NAME = "optuna_journal.log"


class SB3ExtExperimentManager(ExperimentManager):
    """ExperimentManager with sb3-ext's hyperparameter files, journal default and input checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._policy: Any = None  # the YAML's policy, known once the hyperparameters are read
        env_id = self.env_name.gym_id
        if self.args.conf_file is None:
            self.config = str(default_conf_file(self.algo, env_id))
        if self.optimize_hyperparameters and self.storage is None:
            self.storage = os.path.join(self.log_folder, self.algo, DEFAULT_JOURNAL_NAME)
            self.study_name = self.study_name or f"{self.algo}-{env_id}-{time.strftime('%Y%m%d-%H%M%S')}"
        if self.storage is not None:
            check_storage_argument(self.storage)
        if self.trial_id is not None and (self.storage is None or self.study_name is None):
            raise ZooUsageError("--trial-id needs --storage and --study-name (the study holding that trial)")
        # args.yml records what was really used.
        self.args.conf_file, self.args.storage, self.args.study_name = self.config, self.storage, self.study_name

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        check_entry_exists(self.config, self.env_name.gym_id, self._is_atari)
        if self.trial_id == 0:
            # rl-zoo3 only loads a trial when ``self.trial_id`` is truthy; feed trial 0 in as custom
            # hyperparameters placed under the command line's, which is the precedence it uses.
            assert self.storage is not None and self.study_name is not None
            trial_params = self.load_trial(self.storage, self.study_name, 0)
            self.custom_hyperparams = {**trial_params, **(self.custom_hyperparams or {})}
        hyperparams, saved_hyperparams = super().read_hyperparameters()
        self._policy = hyperparams.get("policy")
        check_hyperparameter_names(
            hyperparams, ALGOS[self.algo], self.config, self.env_name.gym_id, overridden=self.args.hyperparams or {}
        )
        return hyperparams, saved_hyperparams

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple[Any, ...]:
        # rl-zoo3 wraps every number given for learning_rate / clip_range in a ConstantSchedule;
        # an algorithm that declares a plain float (Phase2 schedules its rate by warm-up stage)
        # gets the number back.
        parameters = inspect.signature(ALGOS[self.algo].__init__).parameters
        plain = {
            key: hyperparams[key]
            for key in ("learning_rate", "clip_range")
            if key in hyperparams and key in parameters and parameters[key].annotation in (float, "float")
        }
        processed, *rest = super()._preprocess_hyperparams(hyperparams)
        if self._eval_env_kwargs_args is None:
            # rl-zoo3 gives evaluation envs the YAML's env_kwargs only when --env-kwargs is also
            # passed; otherwise they are built with the env's defaults (another lattice, map, ...).
            self.eval_env_kwargs = self.env_kwargs
        return ({**processed, **plain}, *rest)

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        env = super().create_envs(n_envs, eval_env=eval_env, no_log=no_log)
        entry = ZOO_ALGORITHMS.get(self.algo)
        if eval_env and entry is not None and entry.multi_agent:
            # Training envs are unfolded into agent slots by the algorithm itself.
            env = evaluation_view(env, self._policy)
        return env

    def _agents_per_copy(self) -> int:
        """Agent slots per env copy for a multi-agent algorithm (each slot is one timestep), else 1."""
        entry = ZOO_ALGORITHMS.get(self.algo)
        if entry is None or not entry.multi_agent:
            return 1
        env = self.create_envs(1, no_log=True)
        try:
            return len(env.get_attr("agent_names")[0]) if env.has_attr("agent_names") else 1
        finally:
            env.close()

    def create_callbacks(self) -> None:
        # rl-zoo3 turns --eval-freq / --save-freq (timesteps) into callback calls by dividing by
        # n_envs; a multi-agent step advances num_timesteps by n_envs * agents, so divide by the
        # agents as well (floor(floor(f / a) / n) = floor(f / (a n))).
        agents = self._agents_per_copy()
        if agents > 1:
            self.eval_freq = max(self.eval_freq // agents, 1) if self.eval_freq > 0 else self.eval_freq
            self.save_freq = max(self.save_freq // agents, 1) if self.save_freq > 0 else self.save_freq
        super().create_callbacks()

    def load_trial(
        self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True
    ) -> dict[str, Any]:
        study = load_existing_study(storage, study_name)
        if trial_id is None:
            params = study.best_trial.params
        else:
            by_number = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
            if trial_id not in by_number:
                raise ZooUsageError(
                    f"--trial-id {trial_id}: study {study_name!r} has trials 0..{len(by_number) - 1}"
                )
            params = by_number[trial_id].params
        return HYPERPARAMS_CONVERTER[self.algo](params) if convert else params

    def objective(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        # rl-zoo3 evaluates a trial every n_timesteps / n_evaluations // n_envs callback calls; with
        # agent slots a call is n_envs * agents timesteps, so ask for agents times more evaluations
        # to get the n_evaluations the user asked for (read only inside objective, restored after).
        agents = self._agents_per_copy()
        asked = self.n_evaluations
        self.n_evaluations = asked * agents
        try:
            return super().objective(trial)
        finally:
            self.n_evaluations = asked

    def hyperparameters_optimization(self) -> None:
        assert self.storage is not None and self.study_name is not None  # set in __init__
        study = join_study(self.storage, self.study_name)
        print(
            f"Optuna study {self.study_name!r} in {describe_storage(self.storage)} "
            f"({len(study.trials)} trials so far); more workers join with: "
            f"--storage {describe_storage(self.storage)} --study-name {self.study_name}"
        )
        super().hyperparameters_optimization()
