"""SharedActor: one actor-critic per team, team buffers, team-aware truncation values, team logs."""

import csv

import numpy as np
import pytest
import torch as th
from multiagent_toys import (  # noqa: F401
    CountdownEnv,
    one_torch_thread,
    random_spread_return,
    spread_summed_return,
    zoo_hyperparams,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.multiagent.vec import make_parallel_vec_env
from sb3_ext.shared_actor import MultiTeamPolicy, SharedActor

GAMMA = 0.9


def team_env(n_copies: int = 2):
    """Four agents in teams (0, 0, 1, 1); episodes of 4 steps end by the time limit."""
    return make_parallel_vec_env(lambda: CountdownEnv(length=4, teams=(0, 0, 1, 1)), n_copies=n_copies)


def set_constant_value(policy, value: float) -> None:
    with th.no_grad():
        policy.value_net.weight.zero_()
        policy.value_net.bias.fill_(value)


def test_one_network_per_team_agent_or_all():
    env = team_env()
    assert len(SharedActor("MlpPolicy", env).policy.groups) == 2
    assert len(SharedActor("MlpPolicy", env, sharing="agent").policy.groups) == 4
    assert len(SharedActor("MlpPolicy", env, sharing="all").policy.groups) == 1
    with pytest.raises(ValueError, match="sharing='teams'"):
        SharedActor("MlpPolicy", env, sharing="teams")


def test_rows_go_to_their_teams_network():
    model = SharedActor("MlpPolicy", make_swarm2d_vec_env(n_copies=2, seed=0), seed=0)
    router: MultiTeamPolicy = model.policy
    obs = model.env.reset()
    actions = model.predict(obs, deterministic=True)[0]
    team_rows = {0: [0, 1, 2, 3, 8, 9, 10, 11], 1: [4, 5, 6, 7, 12, 13, 14, 15]}
    for team, rows in team_rows.items():
        alone = router.groups[team].predict(obs[rows], deterministic=True)[0]
        np.testing.assert_array_equal(actions[rows], alone)
    assert not np.allclose(router.groups[0].predict(obs, True)[0], router.groups[1].predict(obs, True)[0])
    with pytest.raises(ValueError, match="multiple of 8"):
        model.predict(obs[:5])


def test_team_buffers_and_truncation_values_and_team_logs(tmp_path):
    # learning_rate=0: PPO's update runs (and logs) but the constant values stay put.
    model = SharedActor("MlpPolicy", team_env(), n_steps=4, batch_size=8, n_epochs=1, gamma=GAMMA, learning_rate=0.0,
                        seed=0)  # fmt: skip
    set_constant_value(model.policy.groups[0], 0.0)
    set_constant_value(model.policy.groups[1], 5.0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    # Two rollouts of one 4-step episode each, ended by the time limit. The second row of the
    # log holds the second rollout's rewards and the update after the first.
    model.learn(total_timesteps=2 * 4 * 8)

    team0, team1 = model.team_buffers
    assert team0.n_envs == team1.n_envs == 4  # two agents in each of two copies
    assert set(np.unique(team0.observations[:, 1])) == {0.0, 1.0}  # agent index feature
    assert set(np.unique(team1.observations[:, 1])) == {2.0, 3.0}
    # Reward of agent i is i + 10 * action; at the time limit each team adds gamma times its own
    # value of the terminal observation (0 for team 0, 5 for team 1).
    # PPO's update flattened the buffers slot by slot: back to (step, slot).
    actions0 = team0.actions.reshape(4, 4).T
    actions1 = team1.actions.reshape(4, 4).T
    np.testing.assert_allclose(team0.rewards[:3], [0, 1, 0, 1] + 10 * actions0[:3])
    np.testing.assert_allclose(team0.rewards[3], [0, 1, 0, 1] + 10 * actions0[3])
    np.testing.assert_allclose(team1.rewards[3], [2, 3, 2, 3] + 10 * actions1[3] + GAMMA * 5.0, rtol=1e-5)

    with open(tmp_path / "progress.csv") as file:
        row = list(csv.DictReader(file))[-1]
    assert float(row["team_0/reward"]) == pytest.approx(0.5 + 10 * actions0.mean())
    assert float(row["team_1/reward"]) == pytest.approx(2.5 + 10 * actions1.mean())
    for key in ("team_0/value_loss", "team_1/value_loss", "train/value_loss", "team_1/policy_gradient_loss"):
        assert row[key] != ""
    value_loss = np.mean([float(row["team_0/value_loss"]), float(row["team_1/value_loss"])])
    assert float(row["train/value_loss"]) == pytest.approx(value_loss)


def test_learns_from_a_pettingzoo_env_directly():
    model = SharedActor("NCAPolicy", CountdownEnv(teams=(0, 1, 1)), n_steps=8, batch_size=12, n_epochs=1,
                        policy_kwargs=dict(position_indices=None))  # fmt: skip
    assert model.observation_space.shape == (3, 2)  # NCAPolicy switched joint observations on
    model.learn(48)
    assert model.num_timesteps == 48


def test_zoo_hyperparameters_build_a_model_on_the_env_rl_zoo3_makes():
    policy, kwargs, _ = zoo_hyperparams("shared_actor", "Swarm2D-v0")
    model = SharedActor(policy, make_vec_env("Swarm2D-v0", n_envs=2), **{**kwargs, "n_steps": 8, "batch_size": 32})
    model.learn(128)
    assert len(model.policy.groups) == 2 and model.num_timesteps == 128


@pytest.mark.slow
def test_learns_simple_spread_far_beyond_random():
    """The benchmark's settings (bench_marl_yardsticks.py): about -56 after 150k agent-steps, random about -75."""
    from mpe2 import simple_spread_v3

    env = make_parallel_vec_env(lambda: simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=True),
                                n_copies=8, seed=0)  # fmt: skip
    model = SharedActor("MlpPolicy", env, n_steps=128, batch_size=256, learning_rate=7e-4, gamma=0.95, seed=0)
    model.learn(150_000)
    trained = spread_summed_return(lambda obs: model.predict(obs, deterministic=True)[0])
    assert trained > random_spread_return() + 10.0
