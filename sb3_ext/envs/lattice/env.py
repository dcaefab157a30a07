"""``LatticeGrowth-v0``: steer SOS thin-film growth by biasing the KMC events of a small swarm.

Each RL step:

1. ``n_swarm`` agents sit on distinct columns drawn in proportion to their total rate, so they
   stand where the physics is active (mostly on mobile adatoms, and on columns that can take a
   deposit);
2. the action gives each agent five biases, for the hops of its column's top atom towards
   +x, -x, +y, -y *of the agent's frame* (local +x points to the lowest neighbour, see
   ``swarm``) and for deposition on its column: ``b = max_bias * clip(action, -1, 1)``;
3. ``n_proposals`` events are executed, each drawn from ``P(e) ~ G_e exp(b_e)`` over every event
   of the lattice (events of columns without an agent keep ``b = 0``); the clock advances with
   the physical total rate;
4. the agents are placed again and observed (see ``swarm`` for the observation layout).

The whole step runs in one compiled call and touches O(n_swarm) columns plus the few columns
around each event; only the sum tree's depth, O(log N), grows with the lattice area.

Per-step ESS: every executed event has the exact ESS ``R^2 / (R_b R_-b)`` of the configuration
it was drawn in. The step reports their **mean**. The product would be the ESS of the whole
k-event path only if the events were independent draws from one distribution, which they are
not (the configuration changes after each event); it would also shrink geometrically with
``n_proposals``, so a threshold on it would mean something different on every stage file. The
mean stays in (0, 1], equals 1 exactly for a neutral action, and is comparable across stages.

Episode end: ``truncated`` after ``max_steps`` steps; ``terminated`` when the film fills the
lattice (every column at ``nz``: no event is possible). The defaults keep a stage-1 episode well
short of that (about 2.6 of 5 monolayers under neutral physics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_ext.envs.lattice import kernels as K
from sb3_ext.envs.lattice.engine import LatticeKMC, stream_state
from sb3_ext.envs.lattice.physics import SOSPhysics
from sb3_ext.envs.lattice.render import ascii_heights, grey_heights
from sb3_ext.envs.lattice.fixed_agents import observation_size, observe, place_agents, fixed_agents_step

DEFAULT_REWARD_WEIGHTS: dict[str, float] = {
    "roughness_weight": -1.0,
    "coverage_weight": 0.5,
    "ratio_weight": -0.3,
    "ess_weight": -0.1,
}
EVENTS_PER_AGENT = K.N_SLOTS  # hops +x, -x, +y, -y, deposition


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _lattice_size(value: Any) -> tuple[int, int, int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 3:
        raise ValueError(f"lattice_size: expected three integers [nx, ny, nz], each >= 3, got {value!r}")
    try:
        nx, ny, nz = (_positive_int("lattice_size", v, minimum=3) for v in value)
    except ValueError:
        raise ValueError(f"lattice_size: expected three integers [nx, ny, nz], each >= 3, got {value!r}") from None
    return nx, ny, nz


def _reward_weights(value: Mapping[str, float] | None) -> dict[str, float]:
    weights = dict(DEFAULT_REWARD_WEIGHTS)
    if value is None:
        return weights
    if not isinstance(value, Mapping):
        raise ValueError(f"reward_weights: expected a mapping with keys {sorted(weights)}, got {value!r}")
    for key, weight in value.items():
        if key not in weights:
            raise ValueError(f"reward_weights: unknown key {key!r}; expected some of {sorted(weights)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"reward_weights.{key}: expected a finite number, got {weight!r}")
        weights[key] = float(weight)
    return weights


class LatticeGrowthEnv(gym.Env):
    """SOS thin-film growth under KMC, with a swarm of agents that bias local events.

    :param lattice_size: ``[nx, ny, nz]``, each >= 3; heights are capped at ``nz``.
    :param temperature: kelvin.
    :param deposition_rate: monolayers per second on every column that is not full.
    :param max_steps: RL steps per episode.
    :param n_swarm: agents per step (at most ``nx * ny``).
    :param n_proposals: KMC events executed per RL step under one action.
    :param reward_weights: ``roughness_weight`` (on the change of ``W``), ``coverage_weight`` (on
        the change of coverage), ``ratio_weight`` (on ``W / coverage`` when coverage > 0.01),
        ``ess_weight`` (on ``max(0, 0.5 - ESS)``); missing keys take the stage-1 values.
    :param nu, e_s, e_n, e_es: Arrhenius prefactor (1/s) and barriers (eV), see ``SOSPhysics``.
    :param max_bias: largest absolute bias; an action entry of +-1 maps to ``+-max_bias``.
    :param patch_radius: the observed patch around each agent is ``(2r+1) x (2r+1)`` columns.
    :param stop_height: end the episode (truncated) as soon as the mean film height reaches this
        many monolayers, so that films are compared at equal thickness (None: only ``max_steps``).
    :param render_mode: ``None``, ``"ansi"`` (a height map as text) or ``"rgb_array"`` (one grey
        pixel per column, white at ``nz``).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012 (a plain attribute in the base class)

    def __init__(
        self,
        lattice_size: Sequence[int] = (8, 8, 5),
        temperature: float = 600.0,
        deposition_rate: float = 1.0,
        max_steps: int = 100,
        n_swarm: int = 4,
        n_proposals: int = 4,
        reward_weights: Mapping[str, float] | None = None,
        *,
        nu: float = 1e13,
        e_s: float = 1.3,
        e_n: float = 0.3,
        e_es: float = 0.1,
        max_bias: float = 3.0,
        patch_radius: int = 2,
        stop_height: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        nx, ny, nz = _lattice_size(lattice_size)
        self.max_steps = _positive_int("max_steps", max_steps)
        self.n_swarm = _positive_int("n_swarm", n_swarm)
        if self.n_swarm > nx * ny:
            raise ValueError(f"n_swarm: expected at most nx * ny = {nx * ny} agents, got {n_swarm}")
        self.n_proposals = _positive_int("n_proposals", n_proposals)
        self.patch_radius = _positive_int("patch_radius", patch_radius)
        if isinstance(max_bias, bool) or not isinstance(max_bias, (int, float)) or not 0 < max_bias < 20:
            raise ValueError(f"max_bias: expected a number in (0, 20), got {max_bias!r}")
        self.max_bias = float(max_bias)
        if stop_height is not None and (
            isinstance(stop_height, bool) or not isinstance(stop_height, (int, float)) or not 0 < stop_height <= nz
        ):
            raise ValueError(f"stop_height: expected None or a height in (0, nz = {nz}], got {stop_height!r}")
        self.stop_height = None if stop_height is None else float(stop_height)
        self.reward_weights = _reward_weights(reward_weights)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected None, 'ansi' or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        if isinstance(deposition_rate, (int, float)) and not isinstance(deposition_rate, bool) and deposition_rate <= 0:
            raise ValueError(
                f"deposition_rate: expected a flux > 0 (monolayers/s; the film must grow), got {deposition_rate!r}"
            )
        physics = SOSPhysics(temperature=temperature, deposition_rate=deposition_rate, nu=nu, e_s=e_s, e_n=e_n, e_es=e_es)
        if physics.nu == 0:
            raise ValueError("nu: expected a rate > 0 (the environment needs surface diffusion)")

        self.engine = LatticeKMC(nx, ny, nz, physics)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.n_swarm * EVENTS_PER_AGENT,), dtype=np.float32)
        n_obs = observation_size(self.n_swarm, self.patch_radius)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(n_obs,), dtype=np.float32)

        self.agent_columns = np.zeros(self.n_swarm, dtype=np.int64)  # engine-internal column numbers
        # agent_frames[a, L]: absolute hop slot (+x, -x, +y, -y) of agent a's local direction L
        self.agent_frames = np.zeros((self.n_swarm, 4), dtype=np.int64)
        self._obs = np.zeros(n_obs, dtype=np.float32)
        self._swarm_rng = stream_state(None)
        self._steps = 0
        self._ess_total = 0.0

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        self._start_episode(seed)
        e = self.engine
        place_agents(e.rates, e.bexp, e.tree, e.geom, self._swarm_rng, self.agent_columns)
        observe(
            e.column_heights, e.rates, e.tree, e.counters, e.nbr, e.geom,
            self.agent_columns, self.agent_frames, self.patch_radius, 0.0, self._obs,
        )  # fmt: skip
        return self._obs.copy(), self._step_info(ess=1.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        biases = self._biases(action)
        e = self.engine
        roughness_before, coverage_before = e.roughness, e.coverage
        self._steps += 1
        done, ess_sum = fixed_agents_step(
            *e.kernel_state(), self.agent_columns, self.agent_frames, biases, self.n_proposals, e.rng, self._swarm_rng,
            self.patch_radius, self._steps / self.max_steps, self._obs,
        )  # fmt: skip
        ess = ess_sum / done if done else 1.0
        self._ess_total += ess

        roughness, coverage = e.roughness, e.coverage
        w = self.reward_weights
        reward = (
            w["roughness_weight"] * (roughness - roughness_before)
            + w["coverage_weight"] * (coverage - coverage_before)
            + w["ratio_weight"] * (roughness / coverage if coverage > 0.01 else 0.0)
            + w["ess_weight"] * max(0.0, 0.5 - ess)
        )
        terminated, truncated, info = self._episode_end(ess)
        return self._obs.copy(), float(reward), terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            return ascii_heights(self.engine.heights, self.engine.nz)
        if self.render_mode == "rgb_array":
            return grey_heights(self.engine.heights, self.engine.nz)
        return None

    # ------------------------------------------------------------------ helpers
    def _biases(self, action: np.ndarray) -> np.ndarray:
        """Per-agent biases ``max_bias * clip(action, -1, 1)``, shape ``(n_swarm, 5)``."""
        action = np.asarray(action, dtype=np.float64).reshape(self.n_swarm, EVENTS_PER_AGENT)
        if not np.isfinite(action).all():
            raise ValueError("action: expected finite values in [-1, 1]")
        return self.max_bias * np.clip(action, -1.0, 1.0)

    def _start_episode(self, seed: int | None) -> None:
        """Seed the streams, empty the lattice and the episode counters."""
        super().reset(seed=seed)
        # Two streams: KMC events and agent placement. A neutral action then consumes exactly the
        # event stream a plain ``LatticeKMC.run`` would, which the tests use to check exactness.
        event_seed, swarm_seed = self.np_random.integers(0, 2**63, size=2)
        self.engine.reseed(int(event_seed))
        self._swarm_rng = stream_state(int(swarm_seed))
        self.engine.reset()
        self._steps = 0
        self._ess_total = 0.0

    def _episode_end(self, ess: float) -> tuple[bool, bool, dict[str, Any]]:
        """``terminated`` (film full), ``truncated`` (step limit or ``stop_height``) and the info."""
        e = self.engine
        terminated = e.is_full
        reached = self.stop_height is not None and e.mean_height >= self.stop_height
        truncated = not terminated and (self._steps >= self.max_steps or reached)
        info = self._step_info(ess)
        if terminated or truncated:
            info.update(
                final_roughness=e.roughness,
                final_coverage=e.coverage,
                final_mean_height=e.mean_height,
                mean_ess=self._ess_total / self._steps,
            )
        return terminated, truncated, info

    def _step_info(self, ess: float) -> dict[str, Any]:
        e = self.engine
        return {
            "ess": ess,
            "roughness": e.roughness,
            "coverage": e.coverage,
            "mean_height": e.mean_height,
            "time": e.time,
            "n_events": e.n_events,
            "n_depositions": int(e.counters[K.N_DEPOSITIONS]),
        }

    @property
    def agent_cells(self) -> np.ndarray:
        """Row-major flat indices ``x * ny + y`` of the columns the agents stand on."""
        return self.engine.order[self.agent_columns]
