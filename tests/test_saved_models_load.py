"""Zips saved by an earlier layout of the package still load and act as they did.

The fixtures were written by ``python tests/test_saved_models_load.py [NAME...]`` with the code of
commit 0efefad (the decaying-noise one with 9c8d17c, AuxPPO/AuxA2C with c276784, when each had a
folder of its own and shared code in ``aux_heads``), before modules moved (multi-agent plumbing out
of ``envs/swarm``, critic heads into ``common``, lattice callbacks into the curriculum); the lattice
one with c276784, before ``envs/lattice/swarm.py`` became ``fixed_agents.py``. A saved zip names the
classes it pickled by their import path, so this test fails if an old path stops resolving. The
lattice fixture also records the env's first observation for seed 0, so it fails if the env's
observation changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "saved_models"
NAMES = [
    "TwinDQN", "QuantileDQN", "REINFORCE", "DelayedTD3", "SharedActor", "MAAC", "DelayedTD3-decaying-noise",
    "AuxPPO", "AuxA2C", "PPO-LatticeGrowth",
]


def algorithm_of(name: str) -> type:
    """The class that loads fixture ``name`` (ours, or SB3's PPO on our lattice env)."""
    import stable_baselines3

    import sb3_ext

    prefix = name.split("-")[0]
    return getattr(stable_baselines3, prefix) if prefix == "PPO" else getattr(sb3_ext, prefix)


def first_lattice_observation():
    """``LatticeGrowth-v0``'s first observation for seed 0, as a batch of one."""
    import gymnasium as gym

    import sb3_ext  # noqa: F401  (registers the env)

    return gym.make("LatticeGrowth-v0").reset(seed=0)[0][None]


def make_models():
    """The models the fixtures hold, each trained a little on a tiny env (a network of 8 units)."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    import sb3_ext

    tiny = dict(net_arch=[8])
    swarm = dict(num_teams=2, agents_per_team=2, num_resources=2, num_heavy=0, max_cycles=8)
    return {
        "TwinDQN": sb3_ext.TwinDQN("MlpPolicy", "CartPole-v1", learning_starts=32, policy_kwargs=tiny, seed=0),
        "QuantileDQN": sb3_ext.QuantileDQN(
            "MlpPolicy", "CartPole-v1", learning_starts=32, policy_kwargs={**tiny, "n_quantiles": 5}, seed=0
        ),
        "REINFORCE": sb3_ext.REINFORCE("MlpPolicy", "CartPole-v1", n_steps=64, policy_kwargs=tiny, seed=0),
        "DelayedTD3": sb3_ext.DelayedTD3("MlpPolicy", "Pendulum-v1", learning_starts=32, policy_kwargs=tiny, seed=0),
        "SharedActor": sb3_ext.SharedActor(
            "MlpPolicy", gym.make("Swarm2D-v0", **swarm), n_steps=8, batch_size=16, policy_kwargs=tiny, seed=0
        ),
        "MAAC": sb3_ext.MAAC(
            "MlpPolicy",
            gym.make("Swarm2D-v0", **swarm),
            learning_starts=16,
            batch_size=8,
            policy_kwargs=dict(net_arch=[8], critic_hidden_dim=8),
            seed=0,
        ),
        # The zip pickles the noise object itself, by its import path.
        "DelayedTD3-decaying-noise": sb3_ext.DelayedTD3(
            "MlpPolicy",
            "Pendulum-v1",
            learning_starts=32,
            policy_kwargs=tiny,
            seed=0,
            action_noise=sb3_ext.DecayingNormalActionNoise(np.zeros(1), 0.5, final_sigma=0.1, decay_steps=100),
        ),
        # Written with the code of c276784, when AuxPPO and AuxA2C lived in folders of their own.
        "AuxPPO": sb3_ext.AuxPPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=16,
                                 policy_kwargs={**tiny, "aux_net_arch": [8]}, seed=0),
        "AuxA2C": sb3_ext.AuxA2C("MlpPolicy", "Pendulum-v1", n_steps=8, policy_kwargs={**tiny, "aux_net_arch": [8]}, seed=0),
        "PPO-LatticeGrowth": PPO("MlpPolicy", "LatticeGrowth-v0", n_steps=32, batch_size=32, policy_kwargs=tiny, seed=0),
    }


def write_fixtures(names: list[str] = NAMES) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, model in make_models().items():
        if name not in names:
            continue
        model.learn(64)
        obs = first_lattice_observation() if name == "PPO-LatticeGrowth" else model.get_env().reset()
        model.save(FIXTURES / f"{name}.zip")
        actions, _ = model.predict(obs, deterministic=True)
        np.savez(FIXTURES / f"{name}.npz", obs=obs, actions=actions)


@pytest.mark.parametrize("name", NAMES)
def test_a_zip_saved_by_the_previous_layout_loads_and_acts_the_same(name):
    import sb3_ext

    model = algorithm_of(name).load(FIXTURES / f"{name}.zip", device="cpu")
    recorded = np.load(FIXTURES / f"{name}.npz")
    if name == "PPO-LatticeGrowth":
        np.testing.assert_array_equal(first_lattice_observation(), recorded["obs"])
    actions, _ = model.predict(recorded["obs"], deterministic=True)
    np.testing.assert_array_equal(actions, recorded["actions"])
    if name == "DelayedTD3-decaying-noise":
        assert isinstance(model.action_noise, sb3_ext.DecayingNormalActionNoise)
        assert model.action_noise.steps > 0 and float(np.max(model.action_noise._sigma)) < 0.5  # its schedule position too


def test_the_aux_heads_earlier_import_paths_name_the_same_classes():
    """AuxPPO and AuxA2C moved into ``sb3_ext.aux_heads``; the paths of their old folders still work."""
    from sb3_ext.aux_a2c import AuxA2C
    from sb3_ext.aux_a2c.aux_a2c import AuxA2C as AuxA2CModule
    from sb3_ext.aux_heads import AuxA2C as Moved2
    from sb3_ext.aux_heads import AuxPPO as Moved
    from sb3_ext.aux_ppo import AuxPPO
    from sb3_ext.aux_ppo.aux_ppo import AuxPPO as AuxPPOModule

    assert AuxPPO is AuxPPOModule is Moved and AuxA2C is AuxA2CModule is Moved2


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    write_fixtures(sys.argv[1:] or NAMES)
