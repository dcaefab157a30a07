"""SharedActor: PPO with one actor-critic per team, trained on team-specific rollout buffers.

All agents of a team share one network (parameter sharing inside the team); teams do not share
anything, so competing teams learn their own behaviour in the same episodes. With
``sharing="agent"`` every agent has its own network (independent PPO), with ``sharing="all"``
everybody shares one (PPO with plain parameter sharing).

Each iteration collects one rollout of the whole multi-agent VecEnv, writes every team's slots
into that team's ``RolloutBuffer`` (GAE per slot, as in PPO), then runs PPO's own update once per
team on its buffer. Metrics are logged per team (``team_<k>/reward``: mean reward per agent and
step in the rollout; ``team_<k>/value_loss``, ...) and averaged over teams under ``train/``.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import MaybeCallback, Schedule
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.multiagent.algorithm import AgentSlotsAlgorithm
from sb3_ext.multiagent.vec import agent_slots_of, slot_observations, to_agent_slots
from sb3_ext.nca.policies import NCAPolicy
from sb3_ext.shared_actor.policies import MultiTeamPolicy

SelfSharedActor = TypeVar("SelfSharedActor", bound="SharedActor")

SHARING_MODES = ("team", "agent", "all")


class SharedActor(AgentSlotsAlgorithm, PPO):
    """PPO with one actor-critic per team of agents (see the module docstring).

    :param policy: ``"MlpPolicy"``, ``"NCAPolicy"`` or an ``ActorCriticPolicy`` class: the network
        of each team.
    :param env: a PettingZoo ``ParallelEnv``, a joint env, or a VecEnv with agent slots (see
        :func:`~sb3_ext.multiagent.vec.to_agent_slots`). ``NCAPolicy`` needs joint observations;
        they are switched on when SharedActor builds the VecEnv itself.
    :param sharing: ``"team"`` (one network per team), ``"agent"`` (one per agent) or ``"all"``.
    :param learning_rate: learning rate, constant or a function of the remaining progress (1 to 0)
    :param n_steps: steps per agent slot per rollout (a rollout has ``n_steps * n_slots`` samples)
    :param batch_size: minibatch size of each team's PPO update
    :param n_epochs: passes over each team's buffer per update
    :param gamma: discount factor
    :param gae_lambda: the lambda of generalised advantage estimation
    :param clip_range: PPO's clipping of the probability ratio, constant or a schedule
    :param clip_range_vf: clipping of the value change (None: no clipping); in reward units
    :param normalize_advantage: standardise advantages within each minibatch
    :param ent_coef: entropy bonus coefficient
    :param vf_coef: weight of the value loss
    :param max_grad_norm: gradient clipping norm
    :param use_sde: generalised state-dependent exploration instead of action noise
    :param sde_sample_freq: with ``use_sde``, steps between new noise matrices (-1: once per rollout)
    :param rollout_buffer_class: class of every team's rollout buffer (None: SB3's ``RolloutBuffer``)
    :param rollout_buffer_kwargs: extra arguments for every team's rollout buffer
    :param target_kl: stop a team's update early once its KL divergence passes this (None: never)
    :param stats_window_size: episodes averaged for the rollout/ logs
    :param tensorboard_log: TensorBoard log directory (None: no logging)
    :param policy_kwargs: extra arguments for each team's network
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed
    :param device: torch device
    :param _init_setup_model: whether to build the networks at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ActorCriticPolicy, "NCAPolicy": NCAPolicy}
    # PPO types these as one actor-critic and one buffer. Here the policy is the team router, and
    # train() lends PPO's update each team's actor-critic and buffer in turn; outside train() the
    # team buffers replace PPO's single one (None, so that any use of it fails loudly).
    policy: MultiTeamPolicy | ActorCriticPolicy  # type: ignore[assignment]
    rollout_buffer: RolloutBuffer | None  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: Any,
        sharing: str = "team",
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if sharing not in SHARING_MODES:
            raise ValueError(f"SharedActor: sharing={sharing!r}, expected one of {SHARING_MODES}")
        self.sharing = sharing
        needs_joint = policy == "NCAPolicy" or (isinstance(policy, type) and issubclass(policy, NCAPolicy))
        if env is not None:
            env = to_agent_slots(env, joint_observation=needs_joint)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if not issubclass(self.policy_class, MultiTeamPolicy):
            # Every team gets a copy of the requested network; the router keeps them together.
            self.policy_kwargs = {
                "agent_groups": self._agent_groups(),
                "group_policy_class": self.policy_class,
                "group_policy_kwargs": self.policy_kwargs,
            }
            self.policy_class = MultiTeamPolicy
        if _init_setup_model:
            self._setup_model()

    def _agent_groups(self) -> tuple[int, ...]:
        """Group of each agent of one env copy, from the env's agent slots and ``sharing``."""
        slots = agent_slots_of(self.env) if self.env is not None else None
        if slots is None:  # a single-agent VecEnv: one agent per copy
            return (0,)
        if self.sharing == "agent":
            return tuple(range(slots.n_agents))
        if self.sharing == "all":
            return (0,) * slots.n_agents
        return slots.agent_teams

    def _router(self) -> MultiTeamPolicy:
        """The policy, which is the team router except while train() lends PPO a team's network."""
        if not isinstance(self.policy, MultiTeamPolicy):
            raise RuntimeError("SharedActor: the policy is a team's network inside train(), not the team router")
        return self.policy

    def _setup_model(self) -> None:
        super()._setup_model()
        policy = self._router()
        buffer_class = self.rollout_buffer_class
        assert buffer_class is not None, "OnPolicyAlgorithm._setup_model has chosen the buffer class"
        if self.n_envs % policy.n_agents:
            raise ValueError(
                f"SharedActor: the env has {self.n_envs} slots, not whole copies of {policy.n_agents} agents"
            )
        slots = np.arange(self.n_envs)
        group_of_slot = np.asarray(policy.agent_groups)[slots % policy.n_agents]
        self._group_slots = [np.flatnonzero(group_of_slot == g) for g in range(len(policy.groups))]
        self.team_buffers = [
            buffer_class(
                self.n_steps,
                self.observation_space,
                self.action_space,
                device=self.device,
                gamma=self.gamma,
                gae_lambda=self.gae_lambda,
                n_envs=len(group),
                **self.rollout_buffer_kwargs,
            )
            for group in self._group_slots
        ]
        self.rollout_buffer = None  # the team buffers replace PPO's single buffer

    # ------------------------------------------------------------------------------------------
    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer | None, n_rollout_steps: int
    ) -> bool:
        """PPO's rollout loop, writing each team's slots into its own buffer.

        Written out rather than inherited because SB3's loop bootstraps a truncated episode by
        asking ``policy.predict_values`` about one terminal observation at a time, without saying
        which slot it came from, so it cannot pick the right team's value function; it also
        fills a single buffer. The rest follows SB3's loop step for step.
        """
        assert self._last_obs is not None, "No previous observation was provided"
        assert self._last_episode_starts is not None, "No previous episode starts were provided"
        last_obs, episode_starts = slot_observations(self._last_obs), self._last_episode_starts
        policy = self._router()
        policy.set_training_mode(False)
        for buffer in self.team_buffers:
            buffer.reset()
        reward_sums = np.zeros(len(self.team_buffers))
        callback.on_rollout_start()

        for _ in range(n_rollout_steps):
            with th.no_grad():
                actions, values, log_probs = policy(th.as_tensor(last_obs, device=self.device))
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if policy.squash_output:
                    clipped_actions = policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            for g, slots in enumerate(self._group_slots):
                reward_sums[g] += rewards[slots].sum()
            rewards = rewards + self.gamma * self._truncation_values(infos, dones)

            for buffer, slots in zip(self.team_buffers, self._group_slots, strict=False):
                buffer.add(
                    last_obs[slots],
                    actions[slots],
                    rewards[slots],
                    episode_starts[slots],
                    values[slots],
                    log_probs[slots],
                )
            self._last_obs = last_obs = slot_observations(new_obs)
            self._last_episode_starts = episode_starts = dones

        with th.no_grad():
            values = policy.predict_values(th.as_tensor(last_obs, device=self.device))
        for buffer, slots in zip(self.team_buffers, self._group_slots, strict=False):
            buffer.compute_returns_and_advantage(last_values=values[slots], dones=dones[slots])
        for g, slots in enumerate(self._group_slots):
            self.logger.record(f"team_{g}/reward", reward_sums[g] / (n_rollout_steps * len(slots)))

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _truncation_values(self, infos: list[dict[str, Any]], dones: np.ndarray) -> np.ndarray:
        """V(terminal observation) for slots cut off by a time limit, 0 elsewhere."""
        values = np.zeros(len(dones), dtype=np.float32)
        truncated = [i for i, done in enumerate(dones) if done and infos[i].get("TimeLimit.truncated", False)]
        if truncated:
            policy = self._router()
            terminal = th.as_tensor(np.stack([infos[i]["terminal_observation"] for i in truncated]), device=self.device)
            agents = th.as_tensor(truncated, device=self.device) % policy.n_agents
            with th.no_grad():
                values[truncated] = policy.predict_values(terminal, agents).cpu().numpy().ravel()
        return values

    def train(self) -> None:
        """PPO's update, once per team on the team's buffer; metrics per team and averaged."""
        router = self._router()
        per_team: list[dict[str, Any]] = []
        try:
            for g, (group_policy, buffer) in enumerate(zip(router.group_policies, self.team_buffers, strict=False)):
                self.policy, self.rollout_buffer = group_policy, buffer
                super().train()
                metrics = {
                    k: v for k, v in self.logger.name_to_value.items() if k.startswith("train/") and k != "train/n_updates"
                }
                for key, value in metrics.items():
                    self.logger.record(f"team_{g}/{key.removeprefix('train/')}", value)
                per_team.append(metrics)
        finally:
            self.policy, self.rollout_buffer = router, None
        for key in per_team[0]:
            self.logger.record(key, float(np.mean([metrics[key] for metrics in per_team])))

    def learn(
        self: SelfSharedActor,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "SharedActor",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSharedActor:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "team_buffers", "_group_slots"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        groups = range(len(self._router().groups))
        return ["policy", *[f"policy.groups.{g}.optimizer" for g in groups]], []
