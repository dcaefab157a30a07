"""Where hyperparameters come from, and the checks that turn bad ones into one clear line.

Our YAML files ship inside the package (``sb3_ext/hyperparams/``, package data, as rl-zoo3 ships
its own), one per algorithm key, in rl-zoo3's format. For algorithm keys that rl-zoo3 also ships
(``ppo``, ``dqn``, ...) our file holds only our environments; any other environment falls back to rl-zoo3's own file, so
``sb3-ext-train --algo ppo --env CartPole-v1`` trains with the zoo's tuned settings.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: The package's ``hyperparams/`` folder (package data: present in a wheel install too).
HYPERPARAMS_DIR = Path(__file__).resolve().parents[1] / "hyperparams"

# Keys that rl-zoo3's ExperimentManager consumes itself instead of passing them to the model
# (see ``ExperimentManager._preprocess_hyperparams`` and ``_preprocess_action_noise``).
ZOO_KEYS = frozenset(
    {
        "n_envs",
        "n_timesteps",
        "normalize",
        "env_wrapper",
        "vec_env_wrapper",
        "callback",
        "frame_stack",
        "env_kwargs",
        "monitor_kwargs",
        "noise_type",
        "noise_std",
    }
)


class ZooUsageError(ValueError):
    """A user error in a zoo command (flag, file, YAML entry); the CLIs print it as one line."""


def rl_zoo3_hyperparams_file(algo: str) -> Path:
    """The hyperparameter file rl-zoo3 itself ships for ``algo`` (it may not exist)."""
    import rl_zoo3

    return Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml"


def load_hyperparams_file(path: str | Path) -> dict[str, Any]:
    """Parse one rl-zoo3 YAML file: a mapping from env id to a mapping of hyperparameters."""
    path = Path(path)
    if not path.is_file():
        raise ZooUsageError(f"{path}: hyperparameter file not found")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ZooUsageError(f"{path}: invalid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
        raise ZooUsageError(f"{path}: expected a mapping of env id -> mapping of hyperparameters")
    return content


def _has_entry(path: Path, env_id: str) -> bool:
    # The same look-up rule as rl-zoo3's read_hyperparameters, minus the Atari special case.
    entries = load_hyperparams_file(path)
    return env_id in entries or "default" in entries


def default_conf_file(algo: str, env_id: str) -> Path:
    """The file ``--conf-file`` defaults to: ours if it has ``env_id``, else rl-zoo3's own."""
    ours = HYPERPARAMS_DIR / f"{algo}.yml"
    theirs = rl_zoo3_hyperparams_file(algo)
    if ours.is_file() and _has_entry(ours, env_id):
        return ours
    if theirs.is_file() and _has_entry(theirs, env_id):
        return theirs
    tried = " or ".join(str(p) for p in (ours, theirs) if p.is_file()) or str(ours)
    raise ZooUsageError(f"no hyperparameters for {env_id!r} in {tried}; add an entry or pass --conf-file")


@dataclass
class ZooEntry:
    """One env's entry of an rl-zoo3 hyperparameter file, split as rl-zoo3 splits it.

    :param conf_file: the file it was read from.
    :param policy: the ``policy`` key (e.g. ``"MlpPolicy"``), or None.
    :param n_timesteps: the training budget, or None.
    :param n_envs: the number of env copies (1 when not given).
    :param env_kwargs: keyword arguments of the env.
    :param model_kwargs: the algorithm's constructor arguments: ``policy_kwargs`` evaluated and
        ``noise_type`` / ``noise_std`` turned into ``action_noise``, as rl-zoo3 does.
    :param zoo_settings: the other keys rl-zoo3 consumes itself (``normalize``, ``callback``, ...).
    """

    conf_file: Path
    policy: str | None
    n_timesteps: int | None
    n_envs: int
    env_kwargs: dict[str, Any]
    model_kwargs: dict[str, Any]
    zoo_settings: dict[str, Any]


def read_zoo_entry(algo: str, env_id: str, conf_file: str | Path | None = None) -> ZooEntry:
    """The ``env_id`` entry for zoo key ``algo``, from ``conf_file`` or the file ``--conf-file`` defaults to.

    For scripts that train outside the zoo's command (benchmarks) with the zoo's settings.
    """
    import gymnasium as gym
    import numpy as np
    import torch as th
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    path = Path(conf_file) if conf_file is not None else default_conf_file(algo, env_id)
    entries = load_hyperparams_file(path)
    if env_id not in entries:
        raise ZooUsageError(f"{path}: no entry for {env_id!r} (it has: {', '.join(map(str, entries))})")
    kwargs = dict(entries[env_id])
    policy = kwargs.pop("policy", None)
    n_timesteps = kwargs.pop("n_timesteps", None)
    n_envs = int(kwargs.pop("n_envs", 1))
    env_kwargs = dict(kwargs.pop("env_kwargs", None) or {})
    noise_type, noise_std = kwargs.pop("noise_type", None), kwargs.pop("noise_std", None)
    zoo_settings = {key: kwargs.pop(key) for key in sorted(ZOO_KEYS & set(kwargs))}
    if isinstance(kwargs.get("policy_kwargs"), str):
        # rl-zoo3 evaluates this string (e.g. "dict(net_arch=[64, 64], activation_fn=nn.ReLU)").
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"dict": dict, "nn": th.nn, "th": th})
    if noise_type is not None:
        n_actions = int(np.prod(gym.make(env_id, **env_kwargs).action_space.shape or ()))
        noise_class = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}.get(noise_type)
        if noise_class is None:
            raise ZooUsageError(
                f"{path}: entry {env_id!r}: noise_type {noise_type!r}, expected 'normal' or 'ornstein-uhlenbeck'"
            )
        kwargs["action_noise"] = noise_class(np.zeros(n_actions), float(noise_std) * np.ones(n_actions))
    return ZooEntry(path, policy, None if n_timesteps is None else int(n_timesteps), n_envs, env_kwargs, kwargs, zoo_settings)


def check_entry_exists(conf_file: str, env_id: str, is_atari: bool) -> None:
    """Fail with one line when ``conf_file`` (a YAML file) has no entry rl-zoo3 could use."""
    if not conf_file.endswith((".yml", ".yaml")):
        return  # a Python file or module: rl-zoo3 imports it, nothing to pre-check
    entries = load_hyperparams_file(conf_file)
    if env_id in entries or "default" in entries or (is_atari and "atari" in entries):
        return
    close = difflib.get_close_matches(env_id, list(entries), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (it has: {', '.join(map(str, entries))})"
    raise ZooUsageError(f"{conf_file}: no entry for {env_id!r}{hint}")


def check_hyperparameter_names(
    hyperparams: dict[str, Any],
    algorithm_class: type,
    conf_file: str,
    env_id: str,
    overridden: Collection[str] = (),
) -> None:
    """Reject a key that is neither an rl-zoo3 key nor an argument of the algorithm's ``__init__``,
    and ``env_kwargs`` that are not a mapping.

    Without this the model constructor fails with a ``TypeError`` traceback deep inside rl-zoo3.
    ``overridden`` names the keys given on the command line (``--hyperparams``), to blame the right source.
    """
    if not isinstance(hyperparams.get("env_kwargs", {}), dict):
        # rl-zoo3 evaluates policy_kwargs strings but hands env_kwargs to the env constructor as is.
        source = "--hyperparams" if "env_kwargs" in overridden else f"{conf_file}: entry {env_id!r}"
        raise ZooUsageError(f"{source}: env_kwargs must be a mapping (YAML 'key: value' lines), not a string")
    parameters = inspect.signature(algorithm_class).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # the class forwards **kwargs: it checks names itself
    accepted = (set(parameters) - {"self", "env"}) | ZOO_KEYS
    for key in hyperparams:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            source = "--hyperparams" if key in overridden else f"{conf_file}: entry {env_id!r}"
            raise ZooUsageError(f"{source}: unknown hyperparameter {key!r} for {algorithm_class.__name__}{hint}")
