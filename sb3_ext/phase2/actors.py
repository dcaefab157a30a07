"""Actor-learner training for Phase 2 (``n_actors > 1``).

Actor processes step their own copy of the environment with a frozen copy of the robot's
policy, and also build the world-model successor tables of the states they visit (the
``transition_probabilities`` work), shipping both to the learner one episode at a time. The
learner adds each transition to the replay buffer exactly as synchronous training would
(callbacks, warm-up schedule, buffer clearing) and does ``gradient_steps`` updates per
``train_freq`` steps received, so a fixed step budget buys the same number of updates as in
synchronous mode; it sends the actors its current policy every ``actor_sync_freq`` updates and
at every warm-up stage change. Actors never wait for the learner: while it trains they keep
collecting with their possibly slightly stale policy, the only difference from synchronous mode.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import MaybeCallback, TrainFreq
from stable_baselines3.common.utils import ConstantSchedule

from sb3_ext.phase2.model_targets import SuccessorCache, SuccessorTable

if TYPE_CHECKING:  # phase2.py imports this module
    from sb3_ext.phase2.phase2 import Phase2


def epsilon_greedy(actions: np.ndarray, epsilon: float, n_actions: int) -> np.ndarray:
    """Replace each action by a uniform one with probability ``epsilon``."""
    if epsilon <= 0.0:
        return actions
    explore = np.random.random(np.shape(actions)) < epsilon
    if not explore.any():
        return actions
    return np.where(explore, np.random.randint(n_actions, size=np.shape(actions)), actions)


def _actor(
    index: int,
    env: Any,
    policy_class: type,
    policy_kwargs: dict[str, Any],
    seed: int | None,
    build_tables: bool,
    params: mp.Queue,
    transitions: mp.Queue,
    stop: Any,
) -> None:
    """Actor process: run episodes with the latest policy copy and ship them with new tables."""
    th.set_num_threads(1)
    if seed is not None:
        np.random.seed(seed)
        th.manual_seed(seed)
    policy = policy_class(env.observation_space, env.action_space, ConstantSchedule(0.0), **policy_kwargs)
    policy.set_training_mode(False)
    cache = SuccessorCache(env.prior)
    shipped: set[bytes] = set()
    weights, epsilon = params.get()
    obs, info = env.reset(seed=seed)
    while not stop.is_set():
        try:
            while True:  # keep only the newest copy
                weights, epsilon = params.get_nowait()
        except queue.Empty:
            pass
        policy.load_state_dict(weights)
        steps: list[tuple[np.ndarray, np.ndarray, int, float, bool, dict[str, Any]]] = []
        tables: list[tuple[np.ndarray, SuccessorTable]] = []
        episode_return, start = 0.0, time.time()
        done = False
        while not done:
            key = obs.tobytes()
            if build_tables and key not in shipped:
                shipped.add(key)
                tables.append((obs, cache.build_table(obs)))
            action, _ = policy.predict(obs, deterministic=False)
            action = int(epsilon_greedy(np.asarray(action), epsilon, env.action_space.n))
            next_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            episode_return += reward
            if done:
                info = {**info, "episode": {"r": episode_return, "l": len(steps) + 1, "t": time.time() - start}}
            info = {k: v for k, v in info.items() if k != "state"}  # the observation says it all
            steps.append((obs, next_obs, action, reward, done, info))
            obs = next_obs
        transitions.put((index, steps, tables))
        obs, info = env.reset()


class _Actors:
    """The actor processes and their queues."""

    def __init__(self, model: Phase2, n_actors: int):
        # Like torch's DataLoader workers: fork where the platform has it (fast start; the actors
        # use one torch thread and no parallel region), spawn elsewhere.
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        self.transitions: mp.Queue = ctx.Queue(maxsize=4 * n_actors)
        self.params = [ctx.Queue() for _ in range(n_actors)]
        self.stop = ctx.Event()
        assert model.env is not None, "learn() runs on the model's env"
        env = model.env.get_attr("unwrapped")[0]
        # What BasePolicy.save stores to rebuild a policy; no public accessor exists.
        kwargs = model.policy._get_constructor_parameters()
        for key in ("observation_space", "action_space", "lr_schedule"):
            kwargs.pop(key, None)
        self.model = model
        self.broadcast()
        self.processes = [
            ctx.Process(
                target=_actor,
                args=(i, env, type(model.policy), kwargs, None if model.seed is None else model.seed + 1 + i,
                      model.config.model_based_targets, self.params[i], self.transitions, self.stop),
                daemon=True,
            )
            for i in range(n_actors)
        ]
        for p in self.processes:
            p.start()

    def broadcast(self) -> None:
        """Send every actor the learner's current policy (weights incl. beta_r) and epsilon."""
        weights = {k: v.detach().cpu().clone() for k, v in self.model.policy.state_dict().items()}
        for q in self.params:
            q.put((weights, self.model.exploration_rate))

    def receive(self, timeout: float = 60.0) -> tuple[int, list, list]:
        for p in self.processes:
            if not p.is_alive() and p.exitcode not in (0, None):
                raise RuntimeError(f"Phase2 actor process {p.pid} died with exit code {p.exitcode}")
        return self.transitions.get(timeout=timeout)

    def close(self) -> None:
        self.stop.set()
        for q in [self.transitions, *self.params]:
            try:  # unblock actors waiting on a full queue
                while True:
                    q.get_nowait()
            except (queue.Empty, OSError):
                pass
        for p in self.processes:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        for q in [self.transitions, *self.params]:
            q.close()
            q.cancel_join_thread()


def learn_with_actors(
    model: Phase2,
    total_timesteps: int,
    callback: MaybeCallback,
    log_interval: int,
    tb_log_name: str,
    reset_num_timesteps: bool,
) -> Phase2:
    """``Phase2.learn`` when ``n_actors > 1``.

    SB3 has no public hook for transitions collected outside ``collect_rollouts`` (its
    off-policy ``learn`` always steps ``self.env`` itself), so this loop replaces ``learn`` and
    calls the private steps SB3's own loop calls, in its order: ``_setup_learn``, then per step
    ``_update_info_buffer``, ``_update_current_progress_remaining`` and ``_on_step`` (exploration
    schedule and target updates), so that logs, schedules and callbacks behave as in ``learn``.
    """
    cfg = model.config
    if model.n_envs != 1:
        raise ValueError(f"n_actors: {cfg.n_actors} actors need a single training env (got {model.n_envs}); "
                         "each actor runs its own copy")
    total_timesteps, callbacks = model._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name)
    callbacks.on_training_start(locals(), globals())
    callbacks.on_rollout_start()
    # SB3 turns train_freq into a TrainFreq when it sets up the model; its attribute keeps the argument's type.
    assert isinstance(model.train_freq, TrainFreq)
    train_every = model.train_freq.frequency
    actors = _Actors(model, cfg.n_actors)
    steps_since_train, last_sync, stage = 0, model._n_updates, model._stage
    stopped = False
    try:
        while model.num_timesteps < total_timesteps and not stopped:
            _, steps, tables = actors.receive()
            for obs, table in tables:
                model.successor_cache.insert(obs, table)
            for obs, next_obs, action, reward, done, info in steps:
                if model.num_timesteps >= total_timesteps:
                    break
                model.num_timesteps += 1
                model.replay_buffer.add(obs[None], next_obs[None], np.array([[action]]), np.array([reward]),
                                        np.array([done]), [info])
                callbacks.update_locals(locals())
                if not callbacks.on_step():
                    stopped = True
                    break
                model._update_info_buffer([info], np.array([done]))
                model._update_current_progress_remaining(model.num_timesteps, total_timesteps)
                model._on_step()
                steps_since_train += 1
                if steps_since_train >= train_every and model.num_timesteps > model.learning_starts:
                    steps_since_train = 0
                    model.train(gradient_steps=model.gradient_steps, batch_size=model.batch_size)
                if model._n_updates - last_sync >= cfg.actor_sync_freq or model._stage != stage:
                    last_sync, stage = model._n_updates, model._stage
                    actors.broadcast()
                if done:
                    model._episode_num += 1
                    if log_interval is not None and model._episode_num % log_interval == 0:
                        model.dump_logs()
    finally:
        actors.close()
    callbacks.on_rollout_end()
    callbacks.on_training_end()
    return model
