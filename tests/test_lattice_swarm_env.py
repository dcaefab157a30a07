"""LatticeSwarm-v0: agents on every column (or a density per column), exact KMC at zero action,
per-event ESS against enumeration, and the per-agent reward terms against their definition
computed independently from the plain-Python rate law."""

import copy

import gymnasium as gym
import numpy as np
import pytest

import sb3_ext  # noqa: F401 - registers the environment ids
from sb3_ext.envs.lattice import kernels as K
from sb3_ext.envs.lattice.agent_swarm import agent_observation_size, local_rewards, run_swarm_events
from sb3_ext.envs.lattice.engine import LatticeKMC
from sb3_ext.envs.lattice.physics import SOSPhysics
from sb3_ext.envs.lattice.swarm_env import LatticeSwarmEnv, agents_for
from tests.lattice_reference import enumerated_ess, reference_rates

MIXED = dict(temperature=600.0, deposition_rate=1.0, nu=1e13, e_s=1.44, e_n=0.1, e_es=0.05)
DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def test_agent_count_grows_with_the_lattice_and_the_policy_input_does_not():
    for size, density, expected in (((8, 8, 5), 1.0, 64), ((50, 50, 20), 1.0, 2500), ((20, 20, 10), 0.25, 100)):
        env = LatticeSwarmEnv(size, agent_density=density)
        assert env.n_agents == agents_for(size, density) == expected
        assert env.observation_space.shape == (expected, agent_observation_size(2))
        assert env.action_space.shape == (expected, 5)
    with pytest.raises(ValueError, match="agent_density"):
        LatticeSwarmEnv(agent_density=1.5)


def test_zero_action_is_exact_kmc_with_ess_one_and_zero_rewards():
    env = gym.make("LatticeSwarm-v0", lattice_size=[10, 10, 8], n_proposals=7).unwrapped
    obs, _ = env.reset(seed=3)
    plain = copy.deepcopy(env.engine)
    for _ in range(40):
        obs, reward, _, _, info = env.step(np.zeros(env.action_space.shape))
        assert info["ess"] == 1.0 and reward == 0.0
        assert not info["agent_rewards"].any()
        assert obs.min() >= -1.0 and obs.max() <= 1.0
    plain.run(40 * 7)
    np.testing.assert_array_equal(env.engine.heights, plain.heights)
    assert env.engine.time == plain.time


def test_incremental_totals_give_the_exact_per_event_ess():
    """Many events in one call: the mean ESS equals ``biased_step``'s, whose totals are summed afresh."""
    engine = LatticeKMC(6, 7, 6, SOSPhysics(**MIXED), seed=2)
    engine.run(120)
    columns = np.arange(42)
    biases = np.random.default_rng(1).uniform(-2, 2, size=(42, 5))
    reference = copy.deepcopy(engine)
    done, ess = reference.biased_step(reference.order[columns], biases, 60)
    K.set_biases(engine.rates, engine.bexp, engine.tree, columns, biases, engine.geom)
    done_swarm, ess_sum = run_swarm_events(*engine.kernel_state(), columns, 60, engine.rng)
    assert done_swarm == done == 60
    assert ess_sum / done_swarm == pytest.approx(ess, rel=1e-9)
    # the first event's ESS also matches enumeration
    fresh = LatticeKMC(4, 4, 5, SOSPhysics(**MIXED), seed=0)
    fresh.run(40)
    rates = reference_rates(fresh.heights, 5, **MIXED)
    all_biases = np.random.default_rng(3).uniform(-2, 2, size=(16, 5))
    grid = np.zeros((16, 5))
    grid[fresh.order] = all_biases  # internal column k is row-major order[k]
    expected = enumerated_ess(rates, grid.reshape(4, 4, 5))
    K.set_biases(fresh.rates, fresh.bexp, fresh.tree, np.arange(16), all_biases, fresh.geom)
    _, first = run_swarm_events(*fresh.kernel_state(), np.arange(16), 1, fresh.rng)
    assert first == pytest.approx(expected, rel=1e-10)


def _width_change(heights, x, y, slot):
    """Change of N * W^2 if event ``slot`` of column (x, y) happened, from the heights directly."""
    after = heights.astype(float).copy()
    if slot == 4:
        after[x, y] += 1
    else:
        dx, dy = DIRECTIONS[slot]
        after[x, y] -= 1
        after[(x + dx) % heights.shape[0], (y + dy) % heights.shape[1]] += 1
    return heights.size * (after.var() - heights.astype(float).var())


@pytest.mark.parametrize("seed", [0, 1])
def test_agent_rewards_split_the_expected_roughening_and_the_ess_exactly(seed):
    rng = np.random.default_rng(seed)
    nx, ny, nz = 5, 4, 8
    engine = LatticeKMC(nx, ny, nz, SOSPhysics(**MIXED), seed=seed)
    engine.reset(rng.integers(0, 5, size=(nx, ny)))
    heights = engine.heights
    rates = reference_rates(heights, nz, **MIXED)
    biases_grid = rng.uniform(-1.5, 1.5, size=(nx, ny, 5))
    columns = np.arange(nx * ny)
    biases = biases_grid.reshape(-1, 5)[engine.order]  # per internal column

    deltas = np.array([[[_width_change(heights, x, y, s) for s in range(5)] for y in range(ny)] for x in range(nx)])
    weights = rates * np.exp(biases_grid)
    total, biased = rates.sum(), weights.sum()
    expected_gain = -(biased / total) * ((weights * deltas).sum() / biased - (rates * deltas).sum() / total)
    expected_ess_cost = 1.0 / enumerated_ess(rates, biases_grid) - 1.0

    out = np.empty(nx * ny)
    state = (engine.column_heights, engine.rates, engine.counters, engine.nbr, engine.tree, columns, biases, True)
    local_rewards(*state, 1.0, 0.0, 1, out)
    assert out.sum() == pytest.approx(expected_gain, rel=1e-9, abs=1e-12)
    local_rewards(*state, 0.0, 1.0, 1, out)
    assert out.sum() == pytest.approx(-expected_ess_cost, rel=1e-9)
    # an agent that does not bias earns nothing, whatever the others do
    biases[3] = 0.0
    local_rewards(*state, 1.0, 1.0, 5, out)
    assert out[3] == 0.0


def test_density_below_one_draws_distinct_active_columns():
    env = LatticeSwarmEnv((12, 12, 8), agent_density=0.1, n_proposals=10)
    env.reset(seed=0)
    for _ in range(20):
        env.step(np.zeros(env.action_space.shape))
        assert len(np.unique(env.agent_columns)) == env.n_agents == 14
        assert all(env.engine.rates[c].sum() > 0 for c in env.agent_columns)


def test_temperature_is_an_input_and_stop_height_ends_the_episode():
    cold = LatticeSwarmEnv((8, 8, 6), temperature=500.0)
    hot = LatticeSwarmEnv((8, 8, 6), temperature=700.0)
    assert cold.reset(seed=0)[0][0, -1] == pytest.approx(-0.5) and hot.reset(seed=0)[0][0, -1] == pytest.approx(0.5)
    env = LatticeSwarmEnv((8, 8, 6), max_steps=1000, n_proposals=8, stop_height=1.0)
    env.reset(seed=0)
    for _ in range(1000):
        _, _, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        if terminated or truncated:
            break
    assert truncated and info["mean_height"] >= 1.0 and info["final_roughness"] == env.engine.roughness
    assert env.engine.n_events < 1000 * 8


def test_a2c_trains_on_agent_slots_and_its_policy_runs_on_a_larger_lattice(tmp_path):
    """Any on-policy algorithm that takes a policy class trains the shared per-agent policy."""
    from stable_baselines3 import A2C
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_ext.multiagent.vec import AgentSlotsVecEnv

    def slots(size):
        return AgentSlotsVecEnv(DummyVecEnv([lambda: LatticeSwarmEnv(size, max_steps=8)]))

    model = A2C("MlpPolicy", slots((4, 4, 3)), n_steps=4, seed=0, device="cpu")
    model.learn(128)
    model.save(tmp_path / "a2c")
    loaded = A2C.load(tmp_path / "a2c", device="cpu")
    larger = slots((8, 8, 5))
    observations = larger.reset()
    assert observations.shape[0] == 64  # one slot per column of the larger lattice
    actions, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, model.predict(observations, deterministic=True)[0])
    larger.step(actions)
