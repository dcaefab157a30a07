"""What ``sb3_ext.train`` / ``enjoy`` / ``record_video`` share: registration, input checks, errors.

Each command is rl-zoo3's own script run after :func:`register_zoo`, so it has exactly rl-zoo3's
flags. Before handing over we check the few inputs rl-zoo3 would otherwise reject with a
traceback (unknown env id, no trained model to replay) and print one line instead.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import rl_zoo3.enjoy
import rl_zoo3.utils
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.zoo.config import ZooUsageError
from sb3_ext.zoo.multi_agent import evaluation_view
from sb3_ext.zoo.registry import ZOO_ALGORITHMS, register_zoo


def peek_arguments(argv: list[str]) -> argparse.Namespace:
    """Read the flags we check ahead of rl-zoo3's own parser (which owns ``--help`` and errors).

    Names and defaults are rl-zoo3's; a folder left unset stays ``None`` so callers can tell.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--gym-packages", nargs="+", default=[])
    parser.add_argument("-f", "--folder", "--log-folder", default=None)
    parser.add_argument("--exp-id", type=int, default=0)
    parser.add_argument("--load-best", action="store_true")
    parser.add_argument("--load-checkpoint", type=int)
    parser.add_argument("--load-last-checkpoint", action="store_true")
    known, _ = parser.parse_known_args(argv)
    return known


def check_env_id(env_id: str, gym_packages: list[str]) -> None:
    """One line naming an env id that is not registered, with the closest registered id."""
    for module in gym_packages:
        importlib.import_module(module)
    import rl_zoo3.import_envs  # noqa: F401  (registers rl-zoo3's extra ids, e.g. the NoVel envs)

    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ZooUsageError(f"--env {env_id!r}: not a registered environment id{hint}")


class ReplayLoader:
    """Stands in for one of our classes in ``ALGOS`` while a trained agent is replayed.

    rl-zoo3's enjoy/record_video pass ``buffer_size=1`` only to the algorithms of a list written
    into the scripts (dqn, sac, td3, ...); without this our off-policy algorithms would allocate
    their whole replay buffer just to act. ``load`` keyword arguments override saved attributes
    before the model's buffers are built, the mechanism rl-zoo3 relies on.
    """

    def __init__(self, algorithm_class: type[BaseAlgorithm]) -> None:
        self.algorithm_class = algorithm_class

    def load(self, path: str, **kwargs: Any) -> BaseAlgorithm:
        if issubclass(self.algorithm_class, OffPolicyAlgorithm):
            kwargs.setdefault("buffer_size", 1)
            # A one-slot buffer cannot hold the "next observation" memory optimisation.
            kwargs.setdefault("optimize_memory_usage", False)
        return self.algorithm_class.load(path, **kwargs)


def prepare_replay(algo: str) -> None:
    """Ready rl-zoo3's enjoy/record_video for our algorithms.

    Our classes in ``ALGOS`` become :class:`ReplayLoader` s, and for a multi-agent algorithm the
    test env is shown through :func:`evaluation_view`. Both scripts build that env with
    ``create_test_env`` imported by name (enjoy at import, record_video when it runs), so the
    replacement goes where they look it up.
    """
    for key in ZOO_ALGORITHMS:
        if isinstance(rl_zoo3.utils.ALGOS[key], type):
            rl_zoo3.utils.ALGOS[key] = ReplayLoader(rl_zoo3.utils.ALGOS[key])  # type: ignore[assignment]
    if algo not in ZOO_ALGORITHMS or not ZOO_ALGORITHMS[algo].multi_agent:
        return
    make_test_env = rl_zoo3.utils.create_test_env

    def create_test_env(env_id: str, *args: Any, **kwargs: Any) -> VecEnv:
        env = make_test_env(env_id, *args, **kwargs)
        return evaluation_view(env, (kwargs.get("hyperparams") or {}).get("policy"))

    rl_zoo3.utils.create_test_env = create_test_env
    rl_zoo3.enjoy.create_test_env = create_test_env


def run_zoo_command(
    prog: str,
    argv: list[str],
    script: Callable[[], None],
    check: Callable[[argparse.Namespace], None] | None = None,
    replaying: bool = False,
) -> None:
    """Register the zoo, check ``--env`` (and ``check``), then run an rl-zoo3 script on ``argv``.

    ``replaying`` (enjoy, record_video): see :func:`prepare_replay`.

    A :class:`ZooUsageError` from the checks or from inside the script (our ExperimentManager
    raises them) is printed as one line and exits with status 2, like an argparse error.
    """
    register_zoo()
    saved_argv, sys.argv = sys.argv, [prog, *argv]  # rl-zoo3's scripts parse sys.argv
    try:
        peeked = peek_arguments(argv)
        if replaying:
            prepare_replay(peeked.algo)
        check_env_id(peeked.env, peeked.gym_packages)
        if check is not None:
            check(peeked)
        script()
    except ZooUsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        sys.argv = saved_argv
