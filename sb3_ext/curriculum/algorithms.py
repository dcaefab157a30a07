"""Stages that name their algorithm: ``algo:`` and that algorithm's own hyperparameter section.

A stage file may say ``algo: td3`` (any key of rl-zoo3's algorithm registry once sb3-ext's are
added: SB3's, sb3-contrib's and sb3-ext's) and then give that algorithm's settings under its own
name (``td3: {learning_rate: 1.0e-3, ...}``). Every key must be an argument of the algorithm's
constructor (strict, as the ``ppo:`` section is); what the runner sets itself (env, seed,
device, ...) may not appear. Keys left out keep the constructor's defaults. ``policy`` defaults to
``MlpPolicy``. PPO stages keep their typed ``ppo:`` section (:class:`~sb3_ext.curriculum.config.PPOConfig`).
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # SB3 is imported where models are made: stage files are checked before it loads
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

#: The algorithm a stage without ``algo:`` trains.
DEFAULT_ALGO = "ppo"
#: Constructor arguments the runner sets; a stage's section may not.
RUNNER_ARGUMENTS = frozenset({"self", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"})


def algorithm_class(name: str, where: str) -> type[BaseAlgorithm]:
    """The class registered under ``name`` (rl-zoo3's keys plus sb3-ext's), or a one-line error."""
    from rl_zoo3.utils import (
        ALGOS,  # imported here: it loads every algorithm package (seconds)
    )

    from sb3_ext.zoo.registry import register_zoo

    register_zoo()
    if name not in ALGOS:
        close = difflib.get_close_matches(name, sorted(ALGOS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: algo: unknown algorithm {name!r} (expected one of: {', '.join(sorted(ALGOS))}){hint}")
    return ALGOS[name]


def constructor_arguments(cls: type) -> set[str]:
    """Names ``cls(...)`` accepts, following ``**kwargs`` up the class hierarchy (mixins forward them)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters
        names |= {name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return names


def check_algorithm_section(algo: str, section: Any, where: str) -> dict[str, Any]:
    """Validate a stage's ``<algo>:`` section against the algorithm's constructor; returns a copy."""
    if not isinstance(section, dict):
        raise ValueError(f"{where}: {algo}: expected a mapping of {algo} settings, got {type(section).__name__} {section!r}")
    cls = algorithm_class(algo, where)
    accepted = constructor_arguments(cls) - RUNNER_ARGUMENTS
    for key in section:
        if key in RUNNER_ARGUMENTS:
            raise ValueError(f"{where}: {algo}.{key}: set by the curriculum runner, not by the stage file")
        if key not in accepted:
            close = difflib.get_close_matches(str(key), sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key '{algo}.{key}' ({cls.__name__} takes no such argument){hint}")
    return dict(section)


def new_algorithm_model(algo: str, settings: dict[str, Any], env: VecEnv, seed: int, device: str) -> BaseAlgorithm:
    """A fresh model of ``algo`` with the stage's settings (``policy`` defaults to ``MlpPolicy``)."""
    cls = algorithm_class(algo, "stage")
    kwargs = dict(settings)
    policy = kwargs.pop("policy", "MlpPolicy")
    try:
        return cls(policy, env, seed=seed, device=device, verbose=0, **kwargs)
    except AssertionError as error:  # SB3 asserts the spaces an algorithm supports
        raise ValueError(f"algo {algo}: {error}") from None


def load_algorithm_for_stage(algo: str, settings: dict[str, Any], path: str | Path, env: VecEnv, device: str) -> BaseAlgorithm:
    """Load a saved ``algo`` model to train on ``env`` with the stage's settings (not the saved ones),
    as :func:`~sb3_ext.curriculum.transfer.load_for_stage` does for PPO."""
    from stable_baselines3.common.utils import FloatSchedule

    cls = algorithm_class(algo, "stage")
    custom_objects = {key: value for key, value in settings.items() if key != "policy"}
    if "learning_rate" in settings:
        custom_objects["lr_schedule"] = FloatSchedule(settings["learning_rate"])
    # Every SB3 train() sets the optimizers' learning rate from lr_schedule before its first step.
    return cls.load(path, env=env, device=device, custom_objects=custom_objects)




def algorithm_of_saved_model(path: str | Path, preferred: str | None = None) -> str:
    """The registry key of the algorithm that saved ``path``, read from the zip's data.

    SB3 stores the policy class and the model's attributes, not the algorithm's class. The
    candidates are the registered algorithms with that policy class among their ``policy_aliases``;
    of these, the one with the fewest constructor arguments missing from the saved attributes and
    then the most of them (the most specific: DelayedTD3 before TD3, whose policy it shares) wins;
    ``preferred`` (the stage file's ``algo``) wins if it misses no more arguments than the best
    (DDPG, TD3 with fixed settings, is told from TD3 only that way). A zip no registered algorithm fits, or a
    tie, is a ValueError naming the file.
    """
    from rl_zoo3.utils import ALGOS
    from stable_baselines3.common.save_util import load_from_zip_file

    from sb3_ext.zoo.registry import register_zoo

    register_zoo()
    data = load_from_zip_file(path, load_data=True, device="cpu")[0] or {}
    policy_class = data.get("policy_class")
    if not isinstance(policy_class, type):
        raise ValueError(f"{path}: the saved model names no policy class")
    # Some arguments are kept as private attributes (stats_window_size -> _stats_window_size).
    saved = set(data) | {key.lstrip("_") for key in data}
    fits: dict[str, tuple[int, int]] = {}
    for name, cls in ALGOS.items():
        if policy_class not in getattr(cls, "policy_aliases", {}).values():
            continue
        arguments = constructor_arguments(cls) - RUNNER_ARGUMENTS - {"policy", "env"}
        fits[name] = (len(arguments - saved), -len(arguments))
    if not fits:
        raise ValueError(f"{path}: no registered algorithm uses its policy class {policy_class.__name__}")
    best = min(fits.values())
    if preferred in fits and fits[preferred][0] == best[0]:
        return preferred
    winners = sorted(name for name, fit in fits.items() if fit == best)
    if len(winners) > 1:
        raise ValueError(f"{path}: saved by one of {', '.join(winners)}; name the algorithm in the stage file (algo:)")
    return winners[0]
