"""swarm2d_v0: PettingZoo API, mechanics (pick-up, heavy loads, delivery), rewards, observations."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from sb3_ext.envs.swarm import swarm2d_v0
from sb3_ext.envs.swarm.world import AGENT_FEATURES, OWN_FEATURES, Swarm2DConfig, Swarm2DWorld

NO_SHAPING = {"progress": 0.0}


def test_parallel_api_test_with_respawn():
    parallel_api_test(swarm2d_v0.parallel_env(), num_cycles=200)


def homing_policy(obs: np.ndarray) -> np.ndarray:
    """Scripted agent: run to the nearest resource holding the grab, then carry it home."""
    start = OWN_FEATURES + 4 * AGENT_FEATURES
    target = obs[-2:] if obs[4] else obs[start : start + 2]
    return np.array([*np.clip(target * 20, -1, 1), 1.0])


def test_delivering_everything_terminates_every_agent():
    env = swarm2d_v0.parallel_env(respawn=False, num_teams=1, agents_per_team=2, num_resources=3, num_heavy=0,
                                  max_cycles=500)  # fmt: skip
    obs, _ = env.reset(seed=0)
    steps = 0
    while env.agents:
        obs, _, term, trunc, _ = env.step({agent: homing_policy(o) for agent, o in obs.items()})
        steps += 1
    assert all(term.values()) and not any(trunc.values()) and steps < 500
    assert env.delivered_per_team.tolist() == [3]


def test_aec_version_is_available():
    env = swarm2d_v0.env()
    env.reset(seed=0)
    assert env.agents == swarm2d_v0.parallel_env().possible_agents


def test_observations_and_state_stay_in_their_spaces():
    env = swarm2d_v0.parallel_env(max_cycles=60)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    space = env.observation_space(env.possible_agents[0])
    while env.agents:
        for o in obs.values():
            assert space.contains(o)
        assert env.state_space.contains(env.state())
        obs, *_ = env.step({a: rng.uniform(-1, 1, 3) for a in env.agents})
    assert space.shape == (OWN_FEATURES + 4 * AGENT_FEATURES + 4 * 6 + 2,)


def test_time_limit_truncates_every_agent():
    env = swarm2d_v0.parallel_env(max_cycles=3)
    env.reset(seed=0)
    for _ in range(2):
        _, _, term, trunc, _ = env.step({})
        assert not any(term.values()) and not any(trunc.values())
    _, _, term, trunc, _ = env.step({})
    assert not any(term.values()) and all(trunc.values()) and env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


@pytest.mark.parametrize(
    "kwargs, culprit",
    [
        ({"num_teams": 0}, "num_teams"),
        ({"num_heavy": 9}, "num_heavy"),
        ({"damping": 1.0}, "damping"),
        ({"reward_weights": {"speed": 1.0}}, "speed"),
        ({"no_such_parameter": 1}, "no_such_parameter"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_parameters_are_named(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        swarm2d_v0.parallel_env(**kwargs)


# ---------------------------------------------------------------------------------------------
# Mechanics, on a single-copy world whose state the tests arrange by hand.
def make_world(**kwargs) -> Swarm2DWorld:
    config = Swarm2DConfig.from_kwargs(**{"reward_weights": NO_SHAPING, **kwargs})
    world = Swarm2DWorld(config, n_copies=1, rng=np.random.default_rng(0))
    world.pos[:] = 0.5
    world.vel[:] = 0.0
    world.res_pos[:] = 0.9  # out of everybody's reach unless a test moves a resource
    return world


def act(world: Swarm2DWorld, **per_agent) -> np.ndarray:
    """Actions: zero for every agent except ``a<i>=(tx, ty, grab)``."""
    actions = np.zeros((1, world.config.n_agents, 3))
    actions[0, :, 2] = -1.0
    for key, value in per_agent.items():
        actions[0, int(key[1:])] = value
    return actions


def test_grab_picks_up_only_within_reach_and_release_lets_go():
    world = make_world(num_teams=1, agents_per_team=2, num_resources=2, num_heavy=0)
    world.pos[0, 0] = [0.50, 0.50]
    world.pos[0, 1] = [0.20, 0.20]
    world.res_pos[0, 0] = [0.53, 0.50]  # within pickup_radius (0.06) of agent 0 only
    world.step(act(world, a0=(0, 0, 1), a1=(0, 0, 1)))
    assert world.holding[0].tolist() == [0, -1]
    world.step(act(world, a0=(0, 0, -1)))
    assert world.holding[0].tolist() == [-1, -1]


def test_heavy_resource_needs_two_carriers_of_one_team():
    world = make_world(num_teams=2, agents_per_team=2, num_resources=1, num_heavy=1)
    world.res_pos[0, 0] = [0.5, 0.3]
    world.pos[0, :] = [[0.5, 0.32], [0.5, 0.7], [0.5, 0.28], [0.5, 0.7]]  # a0 (team 0), a2 (team 1) near
    # Both grab; a0 is nearer, so team 0 owns the resource and team 1's a2 is turned away.
    world.pos[0, 2] = [0.5, 0.25]
    world.step(act(world, a0=(0, 0, 1), a2=(0, 0, 1)))
    assert world.holding[0].tolist() == [0, -1, -1, -1]
    # One carrier cannot move a heavy load: thrust does nothing.
    for _ in range(3):
        world.step(act(world, a0=(1, 0, 1)))
    np.testing.assert_allclose(world.res_pos[0, 0], [0.5, 0.3])
    np.testing.assert_allclose(world.pos[0, 0], [0.5, 0.3])
    # A teammate joins: the load moves with the carriers' mean velocity times carry_speed.
    world.pos[0, 1] = [0.5, 0.31]
    world.step(act(world, a0=(1, 0, 1), a1=(1, 0, 1)))
    assert world.holding[0].tolist() == [0, 0, -1, -1]
    expected_speed = world.config.acceleration * world.config.carry_speed
    np.testing.assert_allclose(world.res_pos[0, 0], [0.5 + expected_speed, 0.3])
    np.testing.assert_allclose(world.pos[0, :2], [[0.5 + expected_speed, 0.3]] * 2)


def test_a_resource_takes_at_most_two_carriers():
    world = make_world(num_teams=1, agents_per_team=3, num_resources=1, num_heavy=0)
    world.res_pos[0, 0] = [0.5, 0.5]
    world.pos[0] = [[0.5, 0.51], [0.5, 0.52], [0.5, 0.53]]
    world.step(act(world, a0=(0, 0, 1), a1=(0, 0, 1), a2=(0, 0, 1)))
    assert world.holding[0].tolist() == [0, 0, -1]  # the two nearest


def test_delivery_rewards_the_whole_team_and_respawns_the_resource():
    world = make_world(num_teams=2, agents_per_team=2, num_resources=1, num_heavy=1)
    hive = world.hive_pos[0]
    start = hive + np.array([world.config.hive_radius + 0.005, 0.0])  # just outside team 0's hive
    world.res_pos[0, 0] = start
    world.pos[0, :2] = start
    world.holding[0, :2] = 0
    world.vel[0, :2] = [-world.config.max_speed, 0.0]  # heading home
    rewards = world.step(act(world, a0=(-1, 0, 1), a1=(-1, 0, 1)))
    # Team 0 scores the weight of the heavy resource (2) for each member; team 1 nothing.
    np.testing.assert_allclose(rewards[0], [2.0, 2.0, 0.0, 0.0])
    assert world.delivered_count[0].tolist() == [1, 0]
    assert world.holding[0].tolist() == [-1, -1, -1, -1]
    assert np.linalg.norm(world.res_pos[0, 0] - hive) > world.config.hive_radius


def test_without_respawn_the_last_delivery_terminates():
    world = make_world(num_teams=1, agents_per_team=1, num_resources=1, num_heavy=0, respawn=False)
    hive = world.hive_pos[0]
    world.res_pos[0, 0] = world.pos[0, 0] = hive + np.array([0.05, 0.0])
    world.holding[0, 0] = 0
    assert not world.terminated()[0]
    world.step(act(world, a0=(-1, 0, 1)))
    assert world.terminated()[0] and not world.active[0, 0]


def test_progress_shaping_is_the_decrease_of_the_load_distance():
    weight = 0.7
    world = make_world(num_teams=1, agents_per_team=1, num_resources=1, num_heavy=0,
                       reward_weights={"progress": weight})  # fmt: skip
    hive = world.hive_pos[0]
    world.res_pos[0, 0] = world.pos[0, 0] = hive + np.array([0.4, 0.0])
    world.holding[0, 0] = 0
    before = np.linalg.norm(world.res_pos[0, 0] - hive)
    rewards = world.step(act(world, a0=(-1, 0, 1)))
    after = np.linalg.norm(world.res_pos[0, 0] - hive)
    assert after < before
    np.testing.assert_allclose(rewards[0, 0], weight * (before - after))


def test_observation_lists_nearest_agents_first_with_team_flags():
    world = make_world(num_teams=2, agents_per_team=2, n_agent_neighbours=3)
    world.pos[0] = [[0.5, 0.5], [0.5, 0.8], [0.5, 0.6], [0.1, 0.5]]
    obs = world.observations()[0, 0]
    neighbours = obs[OWN_FEATURES : OWN_FEATURES + 3 * AGENT_FEATURES].reshape(3, AGENT_FEATURES)
    np.testing.assert_allclose(neighbours[:, :2], [[0.0, 0.1], [0.0, 0.3], [-0.4, 0.0]], atol=1e-6)
    assert neighbours[:, 4].tolist() == [0.0, 1.0, 0.0]  # agent 2 and 3 are team 1, agent 1 team 0
    assert neighbours[:, 6].tolist() == [1.0, 1.0, 1.0]


def test_missing_neighbours_are_zero_padded():
    env = swarm2d_v0.parallel_env(num_teams=1, agents_per_team=2, n_agent_neighbours=3, num_resources=2,
                                  num_heavy=0, n_resource_neighbours=4)  # fmt: skip
    obs, _ = env.reset(seed=0)
    o = obs["team_0_0"]
    agents = o[OWN_FEATURES : OWN_FEATURES + 3 * AGENT_FEATURES].reshape(3, AGENT_FEATURES)
    assert agents[:, 6].tolist() == [1.0, 0.0, 0.0] and not agents[1:].any()
    start = OWN_FEATURES + 3 * AGENT_FEATURES
    resources = o[start : start + 4 * 6].reshape(4, 6)
    assert resources[:, 5].tolist() == [1.0, 1.0, 0.0, 0.0] and not resources[2:].any()


def test_copies_of_a_world_do_not_interact():
    """Three copies stepped together behave like each copy stepped alone."""
    config = Swarm2DConfig(respawn=False)
    batch = Swarm2DWorld(config, n_copies=3, rng=np.random.default_rng(1))
    single = Swarm2DWorld(config, n_copies=1, rng=np.random.default_rng(2))
    for name in ("pos", "vel", "holding", "res_pos", "active"):
        getattr(single, name)[0] = getattr(batch, name)[1]
    rng = np.random.default_rng(3)
    for _ in range(150):
        actions = rng.uniform(-1, 1, size=(3, config.n_agents, 3))
        batch_rewards = batch.step(actions)
        single_rewards = single.step(actions[1:2])
        np.testing.assert_array_equal(batch_rewards[1], single_rewards[0])
        np.testing.assert_array_equal(batch.observations()[1], single.observations()[0])


def test_an_arena_without_room_for_resources_is_an_error():
    with pytest.raises(ValueError, match="hive_radius"):
        swarm2d_v0.parallel_env(hive_radius=0.45).reset(seed=0)


def test_approach_shaping_is_the_decrease_of_the_distance_to_the_nearest_resource():
    weight = 2.0
    world = make_world(num_teams=1, agents_per_team=1, num_resources=2, num_heavy=0,
                       reward_weights={"progress": 0.0, "approach": weight})  # fmt: skip
    world.pos[0, 0] = [0.5, 0.5]
    world.res_pos[0] = [[0.8, 0.5], [0.5, 0.9]]  # nearest: the first, 0.3 away
    rewards = world.step(act(world, a0=(1, 0, -1)))
    np.testing.assert_allclose(rewards[0, 0], weight * (0.3 - (0.8 - world.pos[0, 0, 0])))
    assert rewards[0, 0] > 0


def test_rgb_array_rendering_draws_the_arena():
    env = swarm2d_v0.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    colours = {tuple(pixel) for pixel in image.reshape(-1, 3)}
    assert {(255, 255, 255), (31, 119, 180), (214, 39, 40)} <= colours  # background and both teams
    assert swarm2d_v0.parallel_env().render() is None


def numpy_observations(world: Swarm2DWorld) -> np.ndarray:
    """The observation layout written with numpy array operations (independent of the kernel)."""
    c = world.config
    b, n = world.holding.shape
    owner, count = world._owner_and_count()
    holding = world.holding >= 0
    load = np.where(holding, world.holding, 0)
    obs = np.zeros((b, n, c.obs_dim), np.float32)
    copies, my_team = np.arange(b)[:, None, None], world.team[None, :, None]
    table = np.concatenate([world.pos / c.arena_size, world.vel / (2 * c.max_speed),
                            np.broadcast_to(world.team[None, :, None], (b, n, 1)), holding[..., None],
                            np.ones((b, n, 1))], axis=2)  # fmt: skip
    obs[..., 0:2] = 2.0 * table[..., 0:2] - 1.0
    obs[..., 2:4] = 2.0 * table[..., 2:4]
    obs[..., 4] = holding
    obs[..., 5] = holding & (world.weight[load] > 1)
    obs[..., 6] = holding & (count[np.arange(b)[:, None] * c.num_resources + load] >= world.weight[load])
    k = min(c.n_agent_neighbours, n - 1)
    distance = ((world.pos[:, None] - world.pos[:, :, None]) ** 2).sum(axis=3)
    distance[:, np.arange(n), np.arange(n)] = np.inf
    feats = table[copies, np.argsort(distance, axis=2)[..., :k]]
    feats[..., 0:4] -= table[:, :, None, 0:4]
    feats[..., 4] = feats[..., 4] == my_team
    obs[..., OWN_FEATURES : OWN_FEATURES + k * AGENT_FEATURES] = feats.reshape(b, n, -1)
    m = min(c.n_resource_neighbours, c.num_resources)
    owner = owner.reshape(b, -1)
    heavy = np.broadcast_to(world.weight > 1, (b, c.num_resources))
    table = np.stack([*np.moveaxis(world.res_pos / c.arena_size, 2, 0), heavy, owner, owner >= 0, world.active], axis=2)
    table = table.astype(float)
    distance = ((world.res_pos[:, None] - world.pos[:, :, None]) ** 2).sum(axis=3)
    distance[~np.broadcast_to(world.active[:, None, :], distance.shape)] = np.inf
    feats = table[copies, np.argsort(distance, axis=2)[..., :m]]
    feats[..., 0:2] -= (world.pos / c.arena_size)[:, :, None, :]
    mine = feats[..., 3] == my_team
    feats[..., 4] *= ~mine
    feats[..., 3] = mine
    feats *= feats[..., 5:6]
    start = OWN_FEATURES + c.n_agent_neighbours * AGENT_FEATURES
    obs[..., start : start + m * 6] = feats.reshape(b, n, -1)
    obs[..., -2:] = (world.hive_pos[world.team] - world.pos) / c.arena_size
    return obs


@pytest.mark.parametrize("n_copies,respawn", [(1, True), (8, False)])
def test_compiled_observations_match_a_numpy_formulation_bit_for_bit(n_copies, respawn):
    config = Swarm2DConfig(respawn=respawn, num_resources=5, n_resource_neighbours=6)
    world = Swarm2DWorld(config, n_copies=n_copies, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for step in range(150):
        if step % 30 == 0:  # equidistant neighbours with different features: the order of ties counts
            world.pos[:, 1] = world.pos[:, 0]
            world.vel[:, 1] = -world.vel[:, 0] + 0.01
        if step == 100:
            world.active[:, :2] = False  # resources that left the game show as zeros
        observed = world.observations()
        assert observed.tobytes() == numpy_observations(world).tobytes()
        actions = rng.uniform(-1, 1, (n_copies, config.n_agents, 3))
        actions[..., 2] += 0.6  # grab often so that loads get carried
        world.step(actions)
