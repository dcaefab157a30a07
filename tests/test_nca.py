"""The NCA rule: permutation symmetry, locality (information travels one hop per round), SB3 use."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from multiagent_toys import one_torch_thread  # noqa: F401
from sb3_ext.nca import NCACore, NCAExtractor, NCAPolicy

OBS_DIM = 4  # position (2) and two private features


def line_of_agents(batch: int = 2) -> th.Tensor:
    """Five agents on a line with growing gaps: with K = 2 the neighbourhoods form a chain,
    0 hears {1, 2}, 1 hears {0, 2}, 2 hears {1, 3}, 3 hears {2, 4}, 4 hears {3, 2}."""
    th.manual_seed(0)
    obs = th.randn(batch, 5, OBS_DIM)
    obs[..., 0] = th.tensor([0.0, 1.0, 2.1, 3.3, 4.6])
    obs[..., 1] = 0.0
    return obs


def test_permuting_agents_permutes_hidden_states():
    th.manual_seed(1)
    core = NCACore(OBS_DIM, hidden_dim=16, nca_iterations=3, n_neighbours=2)
    obs = th.randn(3, 6, OBS_DIM)
    perm = th.tensor([4, 2, 0, 5, 1, 3])
    with th.no_grad():
        th.testing.assert_close(core(obs[:, perm]), core(obs)[:, perm], atol=1e-6, rtol=1e-5)


def test_features_of_the_observer_ignore_the_order_of_the_others():
    th.manual_seed(2)
    space = spaces.Box(-10, 10, (6, OBS_DIM), np.float32)
    extractor = NCAExtractor(space, hidden_dim=16, nca_iterations=2, n_neighbours=3)
    obs = th.randn(4, 6, OBS_DIM)
    others = th.tensor([0, 3, 5, 1, 4, 2])  # the observer stays first
    with th.no_grad():
        th.testing.assert_close(extractor(obs[:, others]), extractor(obs), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("source, hops", [(2, 1), (3, 2), (4, 3)])
def test_information_travels_one_neighbourhood_per_round(source, hops):
    """Changing agent ``source``'s private features reaches agent 0 after exactly ``hops`` rounds."""
    obs = line_of_agents()
    changed = obs.clone()
    changed[:, source, 2:] += 1.0
    for rounds in range(hops + 1):
        th.manual_seed(3)
        core = NCACore(OBS_DIM, hidden_dim=16, nca_iterations=rounds, n_neighbours=2)
        with th.no_grad():
            difference = (core(obs)[:, 0] - core(changed)[:, 0]).abs().max().item()
        if rounds < hops:
            assert difference == 0.0, f"agent {source} reached agent 0 after {rounds} rounds"
        else:
            assert difference > 1e-6  # exactly 0 before; the signal weakens with every hop


def test_without_positions_everyone_is_a_neighbour():
    obs = line_of_agents()
    changed = obs.clone()
    changed[:, 4, 2:] += 1.0
    th.manual_seed(4)
    core = NCACore(OBS_DIM, hidden_dim=8, nca_iterations=1, position_indices=None)
    with th.no_grad():
        assert (core(obs)[:, 0] - core(changed)[:, 0]).abs().max() > 1e-4


def test_policy_needs_joint_observations():
    flat = spaces.Box(-1, 1, (OBS_DIM,), np.float32)
    with pytest.raises(ValueError, match="joint_observation=True"):
        NCAPolicy(flat, spaces.Box(-1, 1, (2,), np.float32), lambda _: 1e-3)


def test_policy_round_trips_its_constructor_parameters(tmp_path):
    joint = spaces.Box(-10, 10, (5, OBS_DIM), np.float32)
    policy = NCAPolicy(joint, spaces.Box(-1, 1, (2,), np.float32), lambda _: 1e-3, nca_iterations=3, n_neighbours=2)
    policy.save(tmp_path / "nca.pt")
    loaded = NCAPolicy.load(tmp_path / "nca.pt")
    assert loaded.features_extractor.core.nca_iterations == 3 and loaded.features_extractor.core.n_neighbours == 2
    obs = line_of_agents().numpy()
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
