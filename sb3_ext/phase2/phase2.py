"""Phase 2: learn a robot policy that softly maximises an aggregate of long-term human power.

The robot follows the power-law policy pi_r(a) proportional to (-Q_r(s, a))^(-beta_r) and
learns, from a world model of the environment (``env.prior``: the world, the humans' goals and
their policy prior), the quantities of Heitzig & Potham (arXiv 2508.00159), Eqs. 4-9:

    V_h^e(s, g)  chance that human h reaches goal g          (network)
    X_h(s)       = E_g[V_h^e(s, g)^zeta]                       (network)
    U_r(s)       = -(E_h[X_h(s)^-xi])^eta                      (computed; optionally a network on log(y - 1))
    Q_r(s, a)    = gamma_r E[V_r(s') | s, a]                   (network, Q_r < 0 through -softplus)
    V_r(s)       = U_r(s) + pi_r(s) . Q_r(s)                   (computed; optionally a network)

Targets use frozen target networks copied every ``target_update_interval`` updates, and by
default the exact expectation over the successors the world model gives (cached per state).
Training runs in warm-up stages counted in environment steps; see :mod:`sb3_ext.phase2.config`.
"""

from __future__ import annotations

import io
import pathlib
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, TensorDict
from stable_baselines3.common.utils import update_learning_rate
from torch.nn import functional as F

from sb3_ext.common.observations import refuse_dict_observations
from sb3_ext.phase2.actors import epsilon_greedy, learn_with_actors
from sb3_ext.phase2.averaging import WeightAverage
from sb3_ext.phase2.buffers import Phase2ReplayBuffer, Phase2Samples
from sb3_ext.phase2.config import FULL_STAGE, RAMP_STAGE, Phase2Config
from sb3_ext.phase2.denormals import flush_denormals
from sb3_ext.phase2.model_targets import SuccessorBatch, SuccessorCache
from sb3_ext.phase2.policies import PROBABILITY_NETWORKS, PowerLawPolicy, stack_optimizer_state
from sb3_ext.phase2.power import robot_reward
from sb3_ext.phase2.world_model import HumanPrior

SelfPhase2 = TypeVar("SelfPhase2", bound="Phase2")


class Phase2(OffPolicyAlgorithm):
    """Power-law robot assistance, trained off-policy from a world model.

    The environment must expose ``prior``, a :class:`~sb3_ext.phase2.world_model.HumanPrior`
    (which carries the world model and the humans' goals), as ``AssistGrid-v0`` and every
    :class:`~sb3_ext.phase2.env.WorldModelEnv` do. The Phase 2 hyperparameters are collected
    in one validated :class:`~sb3_ext.phase2.config.Phase2Config`, ``model.config``.

    :param policy: ``"MlpPolicy"`` or :class:`PowerLawPolicy` (or a subclass)
    :param env: the environment (or its registered id)
    :param learning_rate: base learning rate of the built-in stage schedule (constant through
        warm-up, then lr / sqrt(1 + t / lr_decay_steps)); a number, not a schedule
    :param buffer_size: replay buffer size
    :param learning_starts: env steps before the first update
    :param batch_size: states per gradient step (every network but X_h, see ``x_h_batch_size``)
    :param train_freq: update every ``train_freq`` steps (of the vectorised env)
    :param gradient_steps: gradient steps per update
    :param replay_buffer_class: default :class:`Phase2ReplayBuffer` (keeps each human's goal)
    :param replay_buffer_kwargs: keyword arguments of the replay buffer
    :param beta_r: the robot's power-law exponent, pi_r(a) proportional to (-Q_r(s, a))^-beta_r
    :param gamma_h: the humans' discount factor in V_h^e
    :param gamma_r: the robot's discount factor in Q_r
    :param zeta: risk aversion across goals, X_h = E_g[V_h^e^zeta]
    :param xi: inequality aversion across humans, U_r = -(E_h[X_h^-xi])^eta
    :param eta: intertemporal inequality aversion
    :param conventions: ``"empo"`` (the EMPO reference's: V_r = dw U_r + pi_r . Q_r with
        dw = (1 - gamma_r) / (-ln gamma_r), terminal V_r = -1e-10) or ``"plain"`` (dw = 1,
        terminal V_r = -1); see :class:`~sb3_ext.phase2.power.PowerParams`
    :param terminal_v_r: V_r at terminal states (< 0); None takes the conventions' value
    :param warmup_v_h_e_steps: env steps of warm-up stage 0 (V_h^e only)
    :param warmup_x_h_steps: env steps of stage 1 (+ X_h)
    :param warmup_u_r_steps: env steps of stage 2 (+ U_r; skipped without a U_r network)
    :param warmup_q_r_steps: env steps of stage 3 (+ Q_r, and V_r when it is a network)
    :param beta_r_rampup_steps: env steps of the sigmoid ramp of beta_r from 0 (stage 4)
    :param lr_decay_steps: time scale of the final learning-rate decay
    :param u_r_use_network: learn U_r (through log(y - 1)) instead of computing it from X_h
    :param u_r_sample_humans: with a U_r network, train it on the mean of X_h^-xi over this
        many humans drawn at random per state (an unbiased estimate of the mean over all);
        None uses every human
    :param v_r_use_network: learn V_r instead of computing dw U_r + pi_r . Q_r
    :param x_h_batch_size: states per gradient step for X_h, drawn separately from the buffer
        (larger batches lower the variance of its targets); None uses ``batch_size``
    :param model_based_targets: exact expectations over the world model's successors
        (cached per state, Expected-SARSA style); False uses the sampled next state
    :param expand_successors: with model-based targets, also train each batch on one model
        successor of every sampled state (one-step Dyna-style expansion)
    :param target_update_interval: gradient updates between full copies into the target networks
    :param max_grad_norm: gradient-norm clip at the base learning rate, scaled by lr / lr0
    :param exploration_initial_eps: epsilon of the epsilon-greedy robot at the start
    :param exploration_final_eps: the floor epsilon decays linearly to
    :param exploration_fraction: fraction of the run over which epsilon decays
    :param directed_exploration: an exploring move (probability epsilon) goes where the robot has
        been least: the move whose successors, by the world model, have the fewest past visits
        (count-based exploration; ties broken at random), instead of a uniform move. It reaches
        states that take many deliberate moves (a key far from the robot), which a uniform
        explorer almost never chains together; synchronous training only (``n_actors`` 1)
    :param clear_buffer_at_ramp: empty the replay buffer when beta_r starts to rise (the warm-up
        robot's states are off-policy for the sampled targets). Model-based targets are exact
        expectations under the current pi_r whoever collected the state, so there the buffer can
        be kept, e.g. to keep training on the states a directed explorer found
    :param uniform_state_fraction: with model-based targets, this share of each batch is drawn
        uniformly over every state the successor tables know (each state sampled from the buffer
        so far and its model successors) instead of from the replay buffer. The targets are exact
        expectations, so where a state comes from changes only how much weight its fit gets:
        states the robot rarely visits (the end of a long detour) are fitted as well as the
        common ones, and since each drawn state's successors join the tables, the known set
        grows through the world model beyond what the robot has visited
    :param q_r_advantage_weight: with model-based targets, the weight of the differences between
        moves in Q_r's loss. Q_r is fitted on log(-Q_r); a state's squared error over moves splits
        exactly into its mean over moves squared plus the spread around that mean, and this
        weights the second part (1: plain squared error). Both parts vanish at the same
        minimiser, so the fitted quantity is unchanged, but where the moves' values differ by a
        few percent while states differ by orders of magnitude (long detours under a large
        beta_r), a weight above 1 makes the network order the moves, which is what pi_r and the
        greedy robot read
    :param weight_averaging_tau: 0 (off) or the rate of a running average of the networks'
        weights (:class:`~sb3_ext.phase2.averaging.WeightAverage`), updated after every gradient
        step of the full stage (beta_r at its final value): a plain mean over the first 1/tau
        steps, then an exponential moving average with a time constant of about 1/tau steps. At
        the end of ``learn`` the networks take the averaged weights (so evaluation, ``predict``
        and the saved model use them; a later ``learn`` continues from them). Training, acting
        and the targets use the online weights meanwhile. The average removes the noise of the
        last updates, which sets the worst-case error of the values at a few states
    :param goal_resample_prob: per-step probability that a human redraws its goal (set on the env)
    :param n_actors: 1 for synchronous training, > 1 for actor processes + a learner
    :param actor_sync_freq: gradient updates between policy copies to the actors
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: TensorBoard log folder (None: no TensorBoard)
    :param policy_kwargs: keyword arguments of the policy (``net_arch``, ``dropout``, ...)
    :param verbose: 0 none, 1 training information, 2 debug
    :param seed: random seed
    :param device: torch device
    :param _init_setup_model: build the networks at construction (SB3's load passes False)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": PowerLawPolicy}
    policy: PowerLawPolicy
    replay_buffer: Phase2ReplayBuffer
    action_space: spaces.Discrete
    learning_rate: float  # checked to be a number in __init__: the stage schedule multiplies it
    prior: HumanPrior  # set by _setup_model

    def __init__(
        self,
        policy: str | type[PowerLawPolicy],
        env: GymEnv | str,
        learning_rate: float = 1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 64,
        batch_size: int = 64,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        beta_r: float = 10.0,
        gamma_h: float = 0.99,
        gamma_r: float = 0.99,
        zeta: float = 2.0,
        xi: float = 1.0,
        eta: float = 1.1,
        conventions: str = "empo",
        terminal_v_r: float | None = None,
        warmup_v_h_e_steps: int = 1000,
        warmup_x_h_steps: int = 1000,
        warmup_u_r_steps: int = 1000,
        warmup_q_r_steps: int = 1000,
        beta_r_rampup_steps: int = 2000,
        lr_decay_steps: int = 1000,
        u_r_use_network: bool = False,
        u_r_sample_humans: int | None = None,
        v_r_use_network: bool = False,
        x_h_batch_size: int | None = None,
        model_based_targets: bool = True,
        expand_successors: bool = True,
        target_update_interval: int = 100,
        max_grad_norm: float = 10.0,
        exploration_initial_eps: float = 0.3,
        exploration_final_eps: float = 0.01,
        exploration_fraction: float = 0.5,
        directed_exploration: bool = False,
        clear_buffer_at_ramp: bool = True,
        uniform_state_fraction: float = 0.0,
        q_r_advantage_weight: float = 1.0,
        weight_averaging_tau: float = 0.0,
        goal_resample_prob: float = 0.01,
        n_actors: int = 1,
        actor_sync_freq: int = 100,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        self.config = Phase2Config(
            beta_r=beta_r, gamma_h=gamma_h, gamma_r=gamma_r, zeta=zeta, xi=xi, eta=eta,
            conventions=conventions, terminal_v_r=terminal_v_r,
            warmup_v_h_e_steps=warmup_v_h_e_steps, warmup_x_h_steps=warmup_x_h_steps,
            warmup_u_r_steps=warmup_u_r_steps, warmup_q_r_steps=warmup_q_r_steps,
            beta_r_rampup_steps=beta_r_rampup_steps, lr_decay_steps=lr_decay_steps,
            u_r_use_network=u_r_use_network, u_r_sample_humans=u_r_sample_humans,
            v_r_use_network=v_r_use_network, x_h_batch_size=x_h_batch_size,
            model_based_targets=model_based_targets, expand_successors=expand_successors,
            target_update_interval=target_update_interval, max_grad_norm=max_grad_norm,
            exploration_initial_eps=exploration_initial_eps, exploration_final_eps=exploration_final_eps,
            exploration_fraction=exploration_fraction, directed_exploration=directed_exploration,
            clear_buffer_at_ramp=clear_buffer_at_ramp, uniform_state_fraction=uniform_state_fraction,
            q_r_advantage_weight=q_r_advantage_weight, weight_averaging_tau=weight_averaging_tau,
            goal_resample_prob=goal_resample_prob,
            n_actors=n_actors, actor_sync_freq=actor_sync_freq,
        )
        if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool) or not learning_rate > 0:
            raise ValueError(
                f"learning_rate: {learning_rate!r}, expected a number > 0 (Phase 2 schedules it by warm-up stage)"
            )
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("buffer_size", buffer_size)
        refuse_dict_observations("Phase2", env)
        super().__init__(
            policy,
            env,
            float(learning_rate),
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            gamma=gamma_r,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
            supported_action_spaces=(spaces.Discrete,),
        )
        self.exploration_rate = self.config.exploration_initial_eps
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup
    def _setup_model(self) -> None:
        prior = getattr(self, "prior", None)  # SB3's load restores the saved one before this runs
        if self.env is not None:
            try:
                prior = self.env.get_attr("prior")[0]
            except AttributeError:
                prior = None
        if not isinstance(prior, HumanPrior):
            raise ValueError(
                "env: Phase2 plans with a world model and needs an env exposing `prior` "
                f"(a sb3_ext.phase2.world_model.HumanPrior, e.g. AssistGrid-v0's), got {self.env!r}"
            )
        self.prior = prior
        cfg = self.config
        self.policy_kwargs.update(
            n_goal_pairs=len(self.prior.goal_pairs),
            n_humans=self.prior.world.n_humans,
            u_r_use_network=cfg.u_r_use_network,
            v_r_use_network=cfg.v_r_use_network,
        )
        if self.replay_buffer_class is None:
            self.replay_buffer_class = Phase2ReplayBuffer
            self.replay_buffer_kwargs = {**self.replay_buffer_kwargs, "n_humans": self.prior.world.n_humans}
        super()._setup_model()
        self.successor_cache = SuccessorCache(self.prior)
        self.visit_counts: dict[bytes, int] = {}  # states the robot has acted in (directed exploration)
        self._target_table: dict[str, th.Tensor] = {}
        self._value_table: dict[str, th.Tensor] = {}
        self._v_r_mean = float("nan")
        self.weight_average = (WeightAverage(self.policy.nets, cfg.weight_averaging_tau)
                               if cfg.weight_averaging_tau > 0.0 else None)
        # (pairs, humans) matrix of each goal's weight in its human's mean over goals.
        pair_matrix = np.zeros((len(self.prior.goal_pairs), self.prior.world.n_humans), dtype=np.float32)
        pair_matrix[np.arange(len(self.prior.goal_pairs)), self.prior.pair_human] = self.prior.pair_weights
        self.pair_matrix = th.as_tensor(pair_matrix, device=self.device)
        self.pair_offsets = th.as_tensor(np.cumsum([0] + [len(g) for g in self.prior.goals[:-1]]), device=self.device)
        if self.env is not None:
            self.env.set_attr("goal_resample_prob", cfg.goal_resample_prob)
        self._stage = cfg.stage(self.num_timesteps)
        self.policy.beta_r.fill_(cfg.effective_beta_r(self.num_timesteps))

    # ------------------------------------------------------------------ acting
    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Power-law action; with probability epsilon (exploration only) a uniform one, or with
        ``directed_exploration`` the least-visited one."""
        action, state = self.policy.predict(observation, state, episode_start, deterministic)
        if deterministic:
            return action, state
        if not self.config.directed_exploration:
            return epsilon_greedy(action, self.exploration_rate, int(self.action_space.n)), state
        rows = np.asarray(observation, dtype=np.float32).reshape(-1, self.prior.world.obs_dim)
        flat = np.array(action).reshape(-1)
        for i in np.flatnonzero(np.random.random(len(flat)) < self.exploration_rate):
            flat[i] = self._least_visited_move(rows[i])
        return flat.reshape(np.shape(action)), state

    def _least_visited_move(self, obs: np.ndarray) -> int:
        """The move whose expected successor visit count (humans from their goal-averaged prior) is lowest."""
        table = self.successor_cache.table(obs)
        counts = np.array([self.visit_counts.get(row.tobytes(), 0) for row in table.obs], dtype=np.float64)
        expected = table.p_robot @ counts
        return int(np.random.choice(np.flatnonzero(expected <= expected.min() + 1e-9)))

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        if self.config.directed_exploration:
            for row in np.asarray(self._last_obs, dtype=np.float32):
                key = row.tobytes()
                self.visit_counts[key] = self.visit_counts.get(key, 0) + 1
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _on_step(self) -> None:
        """After every env step: epsilon, warm-up stage, beta_r."""
        self.exploration_rate = self.config.exploration_rate(1.0 - self._current_progress_remaining)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)
        self._advance_schedule()

    def _advance_schedule(self) -> None:
        cfg = self.config
        stage = cfg.stage(self.num_timesteps)
        if stage != self._stage:
            if self._stage < RAMP_STAGE <= stage and cfg.clear_buffer_at_ramp:
                # Data collected by the uniform warm-up robot is off-policy once beta_r rises.
                self.replay_buffer.reset()
            self._stage = stage
        self.policy.beta_r.fill_(cfg.effective_beta_r(self.num_timesteps))

    # ------------------------------------------------------------------ values
    def _values(self, obs: th.Tensor, target: bool = True) -> dict[str, th.Tensor]:
        """Every target (or main) network's quantity at ``obs`` (batch, features), in one pass
        over the stacked networks."""
        return {name: self.policy.output(name, raw) for name, raw in self.policy.raw_all(obs, target=target).items()}

    def _u_r(self, values: dict[str, th.Tensor]) -> th.Tensor:
        """U_r from the networks' ``values`` (:meth:`_values`)."""
        cfg = self.config
        if cfg.u_r_use_network:
            return -(values["u_r"][..., 0] ** cfg.eta)
        return robot_reward(values["x_h"], cfg.xi, cfg.eta)

    def _v_r(self, values: dict[str, th.Tensor]) -> th.Tensor:
        """V_r at non-terminal states from the networks' ``values`` (callers substitute
        ``terminal_v_r`` at terminal ones)."""
        if self.config.v_r_use_network:
            return values["v_r"][..., 0]
        q_r = values["q_r"]
        pi_r = th.exp(self.policy.log_probs(q_r))
        return self.config.reward_weight * self._u_r(values) + (pi_r * q_r).sum(dim=-1)

    def _u_r_target(self, x_h: th.Tensor) -> th.Tensor:
        """U_r's target y = mean_h X_h^-xi from the target network's X_h, over ``u_r_sample_humans``
        humans drawn per state when set."""
        cfg = self.config
        powers = x_h ** (-cfg.xi)
        k = cfg.u_r_sample_humans
        if k is not None and k < powers.shape[-1]:
            # Drawn without replacement: the mean over a uniform subset is an unbiased estimate of the mean.
            picks = th.rand(powers.shape, device=powers.device).argsort(dim=-1)[..., :k]
            powers = powers.gather(-1, picks)
        return powers.mean(dim=-1, keepdim=True)

    # ------------------------------------------------------------------ targets
    def _state_targets(self, values: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
        """Targets that need only s, from the target networks' ``values`` at s: X_h, U_r's y, V_r;
        plus ``v_r_now``, V_r(s) for the logs."""
        cfg, policy = self.config, self.policy
        q_r = values["q_r"]
        pi_r = th.exp(policy.log_probs(q_r))
        v_r = cfg.reward_weight * self._u_r(values) + (pi_r * q_r).sum(dim=-1)
        return {
            "x_h": (values["v_h_e"] ** cfg.zeta) @ self.pair_matrix,
            "u_r": self._u_r_target(values["x_h"]),
            "v_r": v_r[:, None],
            "v_r_now": v_r if not cfg.v_r_use_network else self._v_r(values),
            "pi_r": pi_r,
        }

    def clear_target_tables(self) -> None:
        """Forget the cached targets (after a target-network copy, or a change of beta_r by hand)."""
        self._target_table, self._value_table = {}, {}

    def _state_values(self) -> dict[str, th.Tensor]:
        """Target-network quantities of every state with a value id: the state targets of
        :meth:`_state_targets` (``v_r_now`` is V_r) and V_h^e. Computed once per distinct state
        between two target-network copies, extended as new states get value ids."""
        known = len(self._value_table.get("v_h_e", ()))
        if self.successor_cache.n_values() > known:
            obs = self.successor_cache.value_observations(known, self.device)
            rows = []
            for part in th.split(obs, 4096):
                values = self._values(part)
                rows.append({**self._state_targets(values), "v_h_e": values["v_h_e"]})
            for name in rows[0]:
                parts = [r[name] for r in rows]
                if name in self._value_table:
                    parts.insert(0, self._value_table[name])
                self._value_table[name] = th.cat(parts)
        return self._value_table

    def _expected_targets(self, values: dict[str, th.Tensor], succ: SuccessorBatch) -> dict[str, th.Tensor]:
        """Every network's target at a batch of states, as exact expectations over their successors."""
        cfg = self.config
        out = {name: values[name][succ.own] for name in ("x_h", "u_r", "v_r", "v_r_now", "pi_r")}
        if cfg.u_r_sample_humans is not None:
            out.pop("u_r")  # drawn afresh every step, see _targets
        v_next = th.where(succ.terminal.bool(), cfg.terminal_value, values["v_r_now"][succ.successors])
        out["q_r"] = cfg.gamma_r * th.einsum("bak,bk->ba", succ.p_robot, v_next)
        v_h_e_next = values["v_h_e"][succ.successors].transpose(1, 2)  # (B, J, K)
        alive = (1.0 - succ.terminal)[:, None, :]
        cont = succ.achieved + (1.0 - succ.achieved) * cfg.gamma_h * alive * v_h_e_next
        out["v_h_e"] = th.einsum("ba,bajk,bjk->bj", out.pop("pi_r"), succ.p_goal, cont)
        return out

    def _target_rows(self, ids: np.ndarray, names: frozenset[str] | set[str]) -> dict[str, th.Tensor]:
        """Model-based targets of states ``ids``.

        The targets of a state depend only on the frozen target networks (and beta_r), so they
        are computed once per state between two target-network copies and then looked up:
        each gradient step only runs the main networks on its batch.
        """
        known = len(self._target_table.get("q_r", ()))
        if len(self.successor_cache) > known:
            new_ids = np.arange(known, len(self.successor_cache))
            values = self._state_values()
            rows = [self._expected_targets(values, self.successor_cache.batch(chunk, self.device))
                    for chunk in np.array_split(new_ids, max(1, len(new_ids) // 512))]
            for name in rows[0]:
                parts = [r[name] for r in rows]
                if name in self._target_table:
                    parts.insert(0, self._target_table[name])
                self._target_table[name] = th.cat(parts)
        index = th.as_tensor(ids, device=self.device)
        return {name: self._target_table[name][index] for name in names if name in self._target_table}

    def _batch(
        self, batch_size: int, active: frozenset[str]
    ) -> tuple[th.Tensor, dict[str, tuple[th.Tensor, th.Tensor | None]]]:
        """A batch from the replay buffer: the states to train on, and per active network its
        target and mask (None: every entry).

        Model-based mode trains on the sampled states plus, with ``expand_successors``, one
        successor of each drawn from the model (uniform over its distinct non-terminal
        successors), and with ``uniform_state_fraction`` that share of the sampled states comes
        uniformly from the successor tables instead of the buffer: Q_r of a move the policy
        rarely takes rests on V_r of a state the buffer
        rarely holds, and this puts such states in every batch. Its targets depend on the state
        alone, so only the states are drawn (no transition tensors). Sets ``_v_r_mean``.
        """
        cfg = self.config
        if not cfg.model_based_targets:
            return self._targets(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env), active)
        ids = self._sample_state_ids(batch_size)
        n_known = round(cfg.uniform_state_fraction * batch_size)
        if n_known:
            # After the buffer draw, so that the tables are never empty.
            ids[:n_known] = self.successor_cache.sample_known(n_known)
        if cfg.expand_successors:
            ids = np.concatenate([ids, self.successor_cache.sample_successors(ids)])
        rows = self._target_rows(ids, {*active, "v_r_now"})
        self._v_r_mean = rows["v_r_now"][:batch_size].mean().item()
        obs = self.successor_cache.observations(ids, self.device)
        if "u_r" in active and cfg.u_r_sample_humans is not None:
            # A fresh draw of humans each step, not a cached one.
            rows["u_r"] = self._u_r_target(self.policy.value("x_h", obs, target=True))
        return obs, {name: (rows[name], None) for name in active}

    def _sample_state_ids(self, batch_size: int) -> np.ndarray:
        """Successor-cache ids of ``batch_size`` states drawn from the replay buffer.

        Each stored observation is looked up in the cache once; its id is kept in the buffer.
        """
        buffer = self.replay_buffer
        rows, envs = buffer.sample_positions(batch_size)
        ids = buffer.state_ids[rows, envs]
        new = ids < 0
        if new.any():
            ids[new] = self.successor_cache.ids(buffer.observations[rows[new], envs[new]])
            buffer.state_ids[rows[new], envs[new]] = ids[new]
        return ids

    def _targets(
        self, data: Phase2Samples, active: frozenset[str]
    ) -> tuple[th.Tensor, dict[str, tuple[th.Tensor, th.Tensor | None]]]:
        """Sampled (TD) targets of a batch of transitions (``model_based_targets=False``)."""
        cfg = self.config
        obs = data.observations
        rows = self._state_targets(self._values(obs))
        self._v_r_mean = rows["v_r_now"].mean().item()
        out: dict[str, tuple[th.Tensor, th.Tensor | None]] = {
            name: (rows[name], None) for name in ("x_h", "u_r", "v_r") if name in active
        }
        if "q_r" in active:
            done = data.dones[:, 0].bool()
            v_next = th.where(done, cfg.terminal_value, self._v_r(self._values(data.next_observations)))
            q_target = (cfg.gamma_r * v_next)[:, None].expand(-1, int(self.action_space.n))
            out["q_r"] = (q_target, F.one_hot(data.actions[:, 0].long(), int(self.action_space.n)).float())
        if "v_h_e" in active:
            out["v_h_e"] = self._sampled_v_h_e_target(data)
        return obs, out

    def _sampled_v_h_e_target(self, data: Phase2Samples) -> tuple[th.Tensor, th.Tensor]:
        """TD target on the goal each human actually pursued, from the observed next state."""
        cfg, world = self.config, self.prior.world
        pairs = self.pair_offsets[None, :] + data.goals  # (B, H) flat pair index
        next_states = [world.decode(o) for o in data.next_observations.cpu().numpy()]
        achieved = th.tensor(
            [
                [float(self.prior.goal_pairs[j].is_achieved(s)) for j in row]
                for s, row in zip(next_states, pairs.tolist(), strict=False)
            ],
            device=self.device,
        )
        v_next = self.policy.value("v_h_e", data.next_observations, target=True).gather(1, pairs)
        alive = 1.0 - data.dones
        target_h = achieved + (1.0 - achieved) * cfg.gamma_h * alive * v_next
        n_pairs = len(self.prior.goal_pairs)
        target = th.zeros(len(pairs), n_pairs, device=self.device).scatter(1, pairs, target_h)
        mask = th.zeros(len(pairs), n_pairs, device=self.device).scatter(1, pairs, 1.0)
        return target, mask

    # ------------------------------------------------------------------ training
    def _regression_loss(self, name: str, raw: th.Tensor, target: th.Tensor, mask: th.Tensor | None) -> th.Tensor:
        """Mean-seeking loss of one network, from its raw output: its minimiser is the expected target.

        V_h^e and X_h are probabilities behind a sigmoid: cross-entropy against the soft target
        has the same minimiser as squared error (the mean) but does not lose its gradient when
        a value is near 0 or 1, where a sigmoid under squared error saturates. The other
        networks use squared error (for U_r on y itself, not on log(y - 1), so that the
        minimiser is E[X_h^-xi] as Eq. 8 needs), except Q_r under model-based targets: those
        are exact expectations (no sampling noise to average), so Q_r is fitted on log(-Q_r),
        the scale pi_r reads it on. Its values span many orders of magnitude under EMPO's
        conventions (-1e-10 one step before the horizon, around -1 elsewhere), which squared
        error on Q_r itself would not resolve; ``q_r_advantage_weight`` weights the part of that
        error that differs between a state's moves.
        """
        if name in PROBABILITY_NETWORKS:
            err = F.binary_cross_entropy_with_logits(raw, target, reduction="none")
        elif name == "q_r" and self.config.model_based_targets:
            diff = log_neg_q(raw) - th.log(-target)
            err = diff**2
            weight = self.config.q_r_advantage_weight
            if weight != 1.0:
                # mean_a d_a^2 = (mean_a d)^2 + mean_a (d_a - mean_a d)^2: weight the second part.
                shared = diff.mean(dim=-1, keepdim=True)
                err = shared**2 + weight * (diff - shared) ** 2
        else:
            err = (self.policy.output(name, raw) - target) ** 2
        return err.mean() if mask is None else (err * mask).sum() / mask.sum()

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.replay_buffer.size() < batch_size:
            return  # just after the buffer was cleared at the start of the ramp
        with flush_denormals():
            self._train(gradient_steps, batch_size)

    def _train(self, gradient_steps: int, batch_size: int) -> None:
        cfg = self.config
        self.policy.set_training_mode(True)
        active = cfg.active_networks(self.num_timesteps)
        lr_factor = cfg.lr_factor(self.num_timesteps)
        update_learning_rate(self.policy.optimizer, self.learning_rate * lr_factor)
        losses: list[th.Tensor] = []
        names: list[str] = []
        # X_h on its own, larger batch when x_h_batch_size asks for one.
        x_h_batch = cfg.x_h_batch_size if "x_h" in active and cfg.x_h_batch_size != batch_size else None
        average = self.weight_average if cfg.stage(self.num_timesteps) == FULL_STAGE else None
        for _ in range(gradient_steps):
            with th.no_grad():
                obs, targets = self._batch(batch_size, active - {"x_h"} if x_h_batch is not None else active)
                if x_h_batch is not None:
                    x_obs, x_targets = self._batch(x_h_batch, frozenset({"x_h"}))
            # Every network with a target in one pass over the batch; the others are not computed.
            raw = self.policy.raw_all(obs, [name for name in targets if name != "x_h" or x_h_batch is None])
            if x_h_batch is not None:
                raw["x_h"] = self.policy.raw("x_h", x_obs)
                targets["x_h"] = x_targets["x_h"]
            step = th.stack([self._regression_loss(name, raw[name], *targets[name]) for name in targets])
            self.policy.optimizer.zero_grad()
            step.sum().backward()
            # Clip each network proportionally to the learning rate: steps stay bounded as lr decays.
            self.policy.nets.clip_grad_norms_(cfg.max_grad_norm * lr_factor)
            self.policy.optimizer.step()
            if average is not None:
                average.update(self.policy.nets)
            losses.append(step.detach())
            names = list(targets)
            self._n_updates += 1
            if self._n_updates % cfg.target_update_interval == 0:
                self.policy.update_targets()
                self.clear_target_tables()
        for name, values in zip(names, th.stack(losses).mean(dim=0).tolist(), strict=True):
            self.logger.record(f"train/loss_{name}", values)
        self.logger.record("train/stage", self._stage)
        self.logger.record("train/beta_r", float(self.policy.beta_r))
        self.logger.record("train/learning_rate", self.learning_rate * lr_factor)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("phase2/v_r_mean", self._v_r_mean)

    # ------------------------------------------------------------------ learn / save
    def learn(
        self: SelfPhase2,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "Phase2",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPhase2:
        if self.config.n_actors > 1:
            learn_with_actors(self, total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps)
        else:
            super().learn(
                total_timesteps=total_timesteps,
                callback=callback,
                log_interval=log_interval,
                tb_log_name=tb_log_name,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=progress_bar,
            )
        if self.weight_average is not None and int(self.weight_average.count) > 0:
            # After the callbacks' training end: they still see the online weights.
            self.weight_average.copy_to(self.policy.nets)
        return self

    def set_parameters(
        self,
        load_path_or_dict: str | TensorDict,
        exact_match: bool = True,
        device: th.device | str = "auto",
    ) -> None:
        # SB3 types these as tensors; they are state dicts (module name -> its state dict).
        params: dict[str, Any] = dict(load_path_or_dict) if isinstance(load_path_or_dict, dict) else load_from_zip_file(
            load_path_or_dict, device=device, load_data=False)[1]
        policy_state = params.get("policy", {})
        first = f"nets.{self.policy.nets.names[0]}.0.weight"
        if first in policy_state and "policy.optimizer" in params:
            # Saved before the networks were stacked: the policy converts its own weights on
            # load; the optimizer's moments are converted here.
            separate = {k[len("nets."):]: v for k, v in policy_state.items() if k.startswith("nets.")}
            params = {**params, "policy.optimizer": stack_optimizer_state(
                self.policy.nets, separate, params["policy.optimizer"])}
        super().set_parameters(params, exact_match=exact_match, device=device)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        super().load_replay_buffer(path, truncate_last_traj)
        buffer = self.replay_buffer
        if isinstance(buffer, Phase2ReplayBuffer):
            # Its state ids index the successor cache of the run that saved it (or are missing).
            buffer.state_ids = np.full((buffer.buffer_size, buffer.n_envs), -1, dtype=np.int64)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "successor_cache", "_target_table", "_value_table", "pair_matrix",
                "pair_offsets", "visit_counts"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        averaged = [] if self.weight_average is None else ["weight_average"]
        return ["policy", "policy.optimizer", *averaged], []


def log_neg_q(raw: th.Tensor) -> th.Tensor:
    """log(-Q_r) = log(softplus(raw)), without underflow where softplus(raw) ~ exp(raw) is tiny."""
    return th.where(raw < -15.0, raw, th.log(F.softplus(raw.clamp(min=-15.0))))


def _check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: {value!r}, expected an integer >= 1")
