"""LatticeGrowth-v0: API checks, exactness of the neutral action, ESS against enumeration,
reward from independently computed morphology, vectorised use, size transfer, and the
"deposit in valleys, hop downhill" reference policy against neutral physics."""

import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import sb3_ext  # noqa: F401  (registers LatticeGrowth-v0)
from sb3_ext.envs.lattice.env import LatticeGrowthEnv
from sb3_ext.envs.lattice.heuristics import neutral_action, valley_downhill_action
from sb3_ext.envs.lattice.fixed_agents import split_observation
from tests.lattice_reference import bias_grid, enumerated_ess, reference_rates
import itertools

STAGE_SIZES = ([8, 8, 5], [20, 20, 10], [50, 50, 20])
STEP_KEYS = {"ess", "roughness", "coverage", "time", "n_events", "mean_height", "n_depositions"}
FINAL_KEYS = {"final_roughness", "final_coverage", "final_mean_height", "mean_ess"}


def test_passes_sb3_and_gymnasium_env_checkers():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's checker warns about anything it dislikes
        sb3_check_env(LatticeGrowthEnv())
    gymnasium_check_env(gym.make("LatticeGrowth-v0", render_mode="ansi").unwrapped)


def test_constructor_takes_the_stage_file_keys():
    env = gym.make(
        "LatticeGrowth-v0",
        lattice_size=[20, 20, 10],
        temperature=600.0,
        deposition_rate=1.0,
        max_steps=200,
        n_swarm=4,
        n_proposals=16,
        reward_weights={"roughness_weight": -1.0, "coverage_weight": 0.5, "ratio_weight": -0.3, "ess_weight": -0.1},
    )
    assert env.unwrapped.engine.heights.shape == (20, 20)
    assert env.action_space.shape == (20,)


def test_neutral_action_is_exact_kmc_with_ess_one():
    env = LatticeGrowthEnv(n_proposals=5)
    obs, _ = env.reset(seed=7)
    plain = copy.deepcopy(env.engine)
    for _ in range(30):
        obs, _, _, _, info = env.step(neutral_action(obs))
        assert info["ess"] == 1.0
    plain.run(30 * 5)
    np.testing.assert_array_equal(env.engine.heights, plain.heights)
    assert env.engine.time == plain.time and info["n_events"] == 150


UNIT = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}  # absolute hop slots +x, -x, +y, -y


def expected_frame(heights, cell):
    """Local +x towards the lowest neighbour, local +y towards the lower perpendicular one
    (first in +x, -x, +y, -y order on ties): the absolute slot of each local direction."""
    nx, ny = heights.shape
    x, y = divmod(int(cell), ny)
    neighbour = [heights[(x + dx) % nx, (y + dy) % ny] for dx, dy in UNIT.values()]
    lowest = int(np.argmin(neighbour))
    pair = [2, 3] if lowest < 2 else [0, 1]
    side = pair[int(np.argmin([neighbour[s] for s in pair]))]
    return [lowest, lowest ^ 1, side, side ^ 1]


def absolute_biases(env, action):
    """Per-agent biases on the absolute slots (+x, -x, +y, -y, deposit) for a local-frame action."""
    local = env.max_bias * np.asarray(action, dtype=np.float64).reshape(env.n_swarm, 5)
    out = np.zeros_like(local)
    for a, frame in enumerate(env.agent_frames):
        out[a, list(frame)] = local[a, :4]
        out[a, 4] = local[a, 4]
    return out


def rough_env(seed, lattice_size=(8, 8, 5), **kwargs):
    """An env whose film is a random rough landscape (agents then have non-trivial frames and
    direction-dependent hop rates), after one neutral step so agents and frames are current."""
    env = LatticeGrowthEnv(lattice_size=list(lattice_size), n_proposals=1, max_steps=10**6, **kwargs)
    obs, _ = env.reset(seed=seed)
    nx, ny, nz = lattice_size
    env.engine.reset(np.random.default_rng(seed).integers(0, nz, size=(nx, ny)))
    obs, *_ = env.step(neutral_action(obs))
    return env, obs


def test_agents_observe_their_patch_in_their_own_frame():
    env, obs = rough_env(2, lattice_size=(9, 7, 8))
    heights = env.engine.heights
    patches, extras, _ = split_observation(obs, env.n_swarm, env.patch_radius)
    for a, cell in enumerate(env.agent_cells):
        frame = expected_frame(heights, cell)
        assert list(env.agent_frames[a]) == frame
        (e1x, e1y), (e2x, e2y) = UNIT[frame[0]], UNIT[frame[2]]
        x, y = divmod(int(cell), 7)
        for u in range(-2, 3):
            for v in range(-2, 3):
                h = heights[(x + u * e1x + v * e2x) % 9, (y + u * e1y + v * e2y) % 7]
                assert patches[a, u + 2, v + 2] == pytest.approx(np.clip(h - heights[x, y], -3, 3) / 3)
        assert extras[a, 0] == pytest.approx(heights[x, y] / 8)


def test_step_ess_matches_enumeration_and_falls_with_bias_scale():
    env, _obs = rough_env(3)
    action = np.random.default_rng(0).uniform(-1, 1, size=env.action_space.shape).astype(np.float32)

    ess_by_scale = []
    for scale in (0.0, 0.25, 0.5, 1.0):
        probe = copy.deepcopy(env)
        scaled = (scale * action).astype(np.float32)
        rates = reference_rates(probe.engine.heights, 5)
        biases = absolute_biases(probe, scaled)
        expected = enumerated_ess(rates, bias_grid((8, 8), probe.agent_cells, biases))
        _, _, _, _, info = probe.step(scaled)
        assert info["ess"] == pytest.approx(expected, rel=1e-10)
        ess_by_scale.append(info["ess"])
    assert ess_by_scale[0] == 1.0
    assert all(a > b for a, b in itertools.pairwise(ess_by_scale))


def test_biases_act_on_the_events_of_the_agents_frames():
    """A step's events follow P ~ rate * exp(bias) with the local action mapped through the frames:
    frequencies over many one-event steps from the same state match the enumerated P."""
    env, _obs = rough_env(5)
    assert any(list(frame) != [0, 1, 2, 3] for frame in env.agent_frames)
    action = np.tile(np.array([1.0, -1.0, 0.5, -0.5, 0.3], dtype=np.float32), env.n_swarm)
    heights = env.engine.heights
    weights = reference_rates(heights, 5) * np.exp(bias_grid((8, 8), env.agent_cells, absolute_biases(env, action)))
    counts = np.zeros(weights.size)
    n_draws = 4000
    for _ in range(n_draws):
        probe = copy.deepcopy(env)
        probe.engine.reseed(env.np_random.integers(2**63))
        probe.step(action)
        moved = np.flatnonzero(probe.engine.heights != heights)
        if len(moved) == 1:  # a deposition
            counts[moved[0] * 5 + 4] += 1
        else:  # a hop from the column that lost an atom, towards the one that gained it
            source = next(c for c in moved if probe.engine.heights.flat[c] < heights.flat[c])
            target = next(c for c in moved if c != source)
            sx, sy = divmod(source, 8)
            slot = next(s for s, (dx, dy) in UNIT.items() if ((sx + dx) % 8) * 8 + (sy + dy) % 8 == target)
            counts[source * 5 + slot] += 1
    expected = weights.reshape(-1) / weights.sum() * n_draws
    assert counts[expected == 0].sum() == 0
    keep = expected > 0
    assert stats.chisquare(counts[keep], expected[keep]).pvalue > 1e-3


def test_agents_stand_on_distinct_active_columns():
    env = LatticeGrowthEnv(lattice_size=[8, 8, 5], n_swarm=6)
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        obs, *_ = env.step(neutral_action(obs))
        cells = env.agent_cells
        assert len(set(cells.tolist())) == 6
        assert np.all(env.engine.event_rates.reshape(64, 5)[cells].sum(axis=1) > 0)


def test_reward_follows_the_weights_on_independently_computed_morphology():
    weights = {"roughness_weight": -2.0, "coverage_weight": 3.0, "ratio_weight": -0.7, "ess_weight": -5.0}
    env = LatticeGrowthEnv(reward_weights=weights, n_proposals=8, max_steps=50)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    h = env.engine.heights
    for _ in range(50):
        action = rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32)
        _obs, reward, terminated, truncated, info = env.step(action)
        h_new = env.engine.heights
        w0, w1 = h.std(), h_new.std()
        c0, c1 = (h > 0).mean(), (h_new > 0).mean()
        expected = (
            -2.0 * (w1 - w0) + 3.0 * (c1 - c0) + (-0.7) * (w1 / c1 if c1 > 0.01 else 0.0) - 5.0 * max(0.0, 0.5 - info["ess"])
        )
        assert reward == pytest.approx(expected, abs=1e-9)
        assert info["roughness"] == pytest.approx(w1, abs=1e-12) and info["coverage"] == c1
        h = h_new
    assert truncated and not terminated


def test_info_keys_and_episode_end():
    env = LatticeGrowthEnv(max_steps=7)
    obs, info = env.reset(seed=0)
    assert STEP_KEYS <= set(info)
    esses = []
    for t in range(7):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert STEP_KEYS <= set(info) and env.observation_space.contains(obs)
        esses.append(info["ess"])
        assert (truncated, terminated) == (t == 6, False)
        assert FINAL_KEYS.isdisjoint(info) or t == 6
    assert info["final_roughness"] == info["roughness"] and info["final_coverage"] == info["coverage"]
    assert info["mean_ess"] == pytest.approx(np.mean(esses))
    assert info["n_events"] == 7 * env.n_proposals


def test_full_lattice_terminates_the_episode():
    env = LatticeGrowthEnv(lattice_size=[3, 3, 3], n_proposals=50, max_steps=1000, n_swarm=2)
    obs, _ = env.reset(seed=0)
    for _ in range(1000):
        obs, _, terminated, truncated, info = env.step(neutral_action(obs))
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert info["final_mean_height"] == 3.0 and info["final_coverage"] == 1.0
    np.testing.assert_array_equal(env.engine.heights, np.full((3, 3), 3))


def test_default_episode_does_not_fill_the_lattice():
    env = LatticeGrowthEnv()
    obs, _ = env.reset(seed=0)
    truncated = terminated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(valley_downhill_action(obs))
    assert truncated and info["final_mean_height"] < 0.7 * 5


def test_seed_reproduces_an_episode():
    def episode(seed):
        env = LatticeGrowthEnv(lattice_size=[10, 9, 6])
        env.action_space.seed(5)
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for _ in range(40):
            obs, reward, *_ , info = env.step(env.action_space.sample())
            trace += [obs, np.array([reward, info["time"], info["ess"]])]
        return np.concatenate(trace)

    np.testing.assert_array_equal(episode(11), episode(11))
    assert not np.array_equal(episode(11), episode(12))


def test_observation_shape_does_not_depend_on_the_lattice():
    shapes = set()
    for size in STAGE_SIZES:
        env = LatticeGrowthEnv(lattice_size=size)
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        shapes.add(obs.shape)
    assert shapes == {LatticeGrowthEnv().observation_space.shape}


def test_dummy_and_subproc_vec_envs_give_the_same_rollout():
    def rollout(vec_env_cls):
        # "module:id" makes worker processes import sb3_ext (and so register the env) first
        vec = make_vec_env("sb3_ext:LatticeGrowth-v0", n_envs=2, seed=4, vec_env_cls=vec_env_cls)
        obs = vec.reset()
        out = [obs]
        for _ in range(20):
            obs, rewards, _dones, infos = vec.step(valley_downhill_action(obs))
            # DummyVecEnv keeps rewards in a float32 buffer, SubprocVecEnv passes float64 on
            out += [obs, rewards[:, None].astype(np.float32), np.array([[i["ess"]] for i in infos])]
        vec.close()
        return np.concatenate([o.reshape(2, -1) for o in out], axis=1)

    np.testing.assert_array_equal(rollout(DummyVecEnv), rollout(SubprocVecEnv))


def test_ppo_trained_on_8x8x5_predicts_on_50x50x20():
    model = PPO("MlpPolicy", LatticeGrowthEnv(), n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    big = LatticeGrowthEnv(lattice_size=[50, 50, 20])
    obs, _ = big.reset(seed=0)
    for _ in range(5):
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, *_ = big.step(action)
        assert np.isfinite(reward)


def test_valley_downhill_heuristic_smooths_at_the_same_thickness_and_high_ess():
    """The reference bias lowers final roughness versus neutral physics at the same deposited
    thickness, with ESS well above the curriculum's 0.3 threshold (same seeds for both)."""

    def final_stats(policy):
        stats = []
        for seed in range(25):
            env = LatticeGrowthEnv()
            obs, _ = env.reset(seed=seed)
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(policy(obs))
                done = terminated or truncated
            stats.append((info["final_roughness"], info["final_mean_height"], info["mean_ess"]))
        return np.array(stats)

    neutral, heuristic = final_stats(neutral_action), final_stats(valley_downhill_action)
    assert abs(heuristic[:, 1].mean() / neutral[:, 1].mean() - 1) < 0.1
    sem = np.sqrt(neutral[:, 0].var(ddof=1) / 25 + heuristic[:, 0].var(ddof=1) / 25)
    assert neutral[:, 0].mean() - heuristic[:, 0].mean() > 4 * sem
    assert heuristic[:, 0].mean() < 0.85 * neutral[:, 0].mean()
    assert 0.7 < heuristic[:, 2].mean() < 0.95


def test_render_draws_the_height_map():
    env = LatticeGrowthEnv(render_mode="ansi")
    obs, _ = env.reset(seed=0)
    for _ in range(30):
        obs, *_ = env.step(neutral_action(obs))
    lines = env.render().splitlines()
    assert len(lines) == 8 and all(len(line) == 8 for line in lines)
    assert [[int(c) for c in line] for line in lines] == env.engine.heights.tolist()

    env.render_mode = "rgb_array"
    image = env.render()
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], env.engine.heights * 255 // 5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lattice_size=[8, 8]), "lattice_size"),
        (dict(lattice_size=[8, 2, 5]), "lattice_size"),
        (dict(lattice_size=[8, 8.0, 5]), "lattice_size"),
        (dict(lattice_size="885"), "lattice_size"),
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-5.0), "temperature"),
        (dict(deposition_rate=0.0), "deposition_rate"),
        (dict(nu=0.0), "nu"),
        (dict(max_steps=0), "max_steps"),
        (dict(n_swarm=0), "n_swarm"),
        (dict(n_swarm=65), "n_swarm"),
        (dict(n_proposals=0), "n_proposals"),
        (dict(reward_weights={"roughness": -1.0}), "reward_weights"),
        (dict(reward_weights={"ess_weight": "high"}), "ess_weight"),
        (dict(max_bias=0.0), "max_bias"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LatticeGrowthEnv(**kwargs)


def test_non_finite_action_is_rejected():
    env = LatticeGrowthEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.full(env.action_space.shape, np.nan, dtype=np.float32))
