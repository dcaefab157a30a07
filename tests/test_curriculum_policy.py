"""SwarmPolicy: shared across agents and hop directions (checked by permuting and mirroring), save/load."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.curriculum.policy import SwarmPolicy
from sb3_ext.envs.lattice.env import EVENTS_PER_AGENT, LatticeGrowthEnv

N_SWARM, SIDE, BLOCK = 4, 5, 27  # patch_radius 2: 5 x 5 heights + 2 features per agent
PLUS_X, MINUS_X, PLUS_Y, MINUS_Y, DEPOSIT = range(5)


@pytest.fixture(scope="module")
def model():
    with torch.no_grad():
        policy_model = PPO(SwarmPolicy, LatticeGrowthEnv(n_swarm=N_SWARM), policy_kwargs={"n_swarm": N_SWARM}, seed=0)
        for parameter in policy_model.policy.action_net.parameters():  # the head starts near zero
            parameter.normal_()
    return policy_model


def _obs(seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, 4 * BLOCK + 5).astype(np.float32)


def _map_patches(obs, transform):
    blocks = obs[: N_SWARM * BLOCK].reshape(N_SWARM, BLOCK).copy()
    for block in blocks:
        block[: SIDE * SIDE] = transform(block[: SIDE * SIDE].reshape(SIDE, SIDE)).ravel()
    return np.concatenate([blocks.ravel(), obs[N_SWARM * BLOCK :]])


def _biases(model, obs):
    return model.predict(obs, deterministic=True)[0].reshape(N_SWARM, EVENTS_PER_AGENT)


def test_agents_share_the_actor(model):
    obs, order = _obs(), [2, 0, 3, 1]
    blocks = obs[: N_SWARM * BLOCK].reshape(N_SWARM, BLOCK)[order].ravel()
    permuted = np.concatenate([blocks, obs[N_SWARM * BLOCK :]])
    # moving an agent's block moves its biases with it
    np.testing.assert_allclose(_biases(model, permuted), _biases(model, obs)[order], atol=1e-6)


def test_hop_directions_share_the_actor(model):
    obs = _obs(1)
    biases = _biases(model, obs)
    # mirror x (patch[dx, dy] -> patch[-dx, dy]): the +x and -x hop biases swap
    mirrored = _biases(model, _map_patches(obs, lambda p: p[::-1, :]))
    np.testing.assert_allclose(mirrored[:, [PLUS_X, MINUS_X]], biases[:, [MINUS_X, PLUS_X]], atol=1e-6)
    # swap x and y: the x and y hops swap, the deposition bias does not change
    swapped = _biases(model, _map_patches(obs, lambda p: p.T))
    np.testing.assert_allclose(swapped[:, [PLUS_X, MINUS_X, PLUS_Y, MINUS_Y]], biases[:, [PLUS_Y, MINUS_Y, PLUS_X, MINUS_X]], atol=1e-6)
    np.testing.assert_allclose(swapped[:, DEPOSIT], biases[:, DEPOSIT], atol=1e-6)
    assert not np.allclose(biases[:, PLUS_X], biases[:, MINUS_X])  # the check is not vacuous


def test_optimizer_holds_every_parameter(model):
    optimised = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in model.policy.parameters()} == optimised
    assert model.policy.action_net.hop.weight.shape == (1, 64)


def test_save_load_round_trip_and_other_lattice_sizes(tmp_path):
    trained = PPO(SwarmPolicy, LatticeGrowthEnv(n_swarm=N_SWARM, max_steps=8), n_steps=32, batch_size=32, n_epochs=1, policy_kwargs={"n_swarm": N_SWARM}, seed=0)
    trained.learn(32)
    trained.save(tmp_path / "swarm.zip")
    loaded = PPO.load(tmp_path / "swarm.zip")
    obs, _ = LatticeGrowthEnv(lattice_size=(50, 50, 20), n_swarm=N_SWARM).reset(seed=1)
    np.testing.assert_array_equal(trained.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.policy.n_swarm == N_SWARM


def test_mismatched_swarm_is_reported():
    with pytest.raises(ValueError, match=r"SwarmPolicy\(n_swarm=3, patch_radius=2\) expects observations of shape \(86,\)"):
        PPO(SwarmPolicy, LatticeGrowthEnv(n_swarm=4), policy_kwargs={"n_swarm": 3})
