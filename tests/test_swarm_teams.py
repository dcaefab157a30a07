"""Team selection: per-team VecEnvs in lockstep over one shared multi-agent env."""

import numpy as np
import pytest
from multiagent_toys import one_torch_thread  # noqa: F401
from stable_baselines3 import PPO

from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.multiagent.teams import TeamSplit, learn_teams


def test_team_envs_see_their_slots_of_the_same_episodes():
    split = TeamSplit(make_swarm2d_vec_env(n_copies=2, seed=3, max_cycles=5))
    reference = make_swarm2d_vec_env(n_copies=2, seed=3, max_cycles=5)
    team0, team1 = split.team_env(0), split.team_env(1)
    assert team0.num_envs == team1.num_envs == 8
    full = reference.reset()
    np.testing.assert_array_equal(team0.reset(), full[split.slots[0]])
    np.testing.assert_array_equal(team1.reset(), full[split.slots[1]])
    rng = np.random.default_rng(0)
    for _ in range(6):  # crosses an episode end
        actions = rng.uniform(-1, 1, size=(16, 3)).astype(np.float32)
        team0.step_async(actions[split.slots[0]])  # one thread: both submit, then both collect
        team1.step_async(actions[split.slots[1]])
        obs0, _rewards0, dones0, _infos0 = team0.step_wait()
        obs1, rewards1, _dones1, _infos1 = team1.step_wait()
        full, rewards, dones, _infos = reference.step(actions)
        np.testing.assert_array_equal(obs0, full[split.slots[0]])
        np.testing.assert_array_equal(obs1, full[split.slots[1]])
        np.testing.assert_array_equal(rewards1, rewards[split.slots[1]])
        np.testing.assert_array_equal(dones0, dones[split.slots[0]])
    assert split.slots[0].tolist() == [0, 1, 2, 3, 8, 9, 10, 11]  # team 0 = first 4 agents of each copy
    assert split.n_steps == 6


def test_models_with_different_budgets_train_in_the_same_episodes():
    split = TeamSplit(make_swarm2d_vec_env(n_copies=1, seed=0, max_cycles=10))
    fast = PPO("MlpPolicy", split.team_env(0), n_steps=16, batch_size=32, n_epochs=1, seed=0)
    slow = PPO("MlpPolicy", split.team_env(1), n_steps=48, batch_size=64, n_epochs=1, seed=1)
    learn_teams(split, [fast, slow], total_timesteps=200)
    # 200 agent-steps with 4 slots: 4 rollouts of 16 steps, or 2 rollouts of 48 steps. After the
    # first model is done, its predictions keep its team moving until the second is done.
    assert fast.num_timesteps == 4 * 16 * 4 and slow.num_timesteps == 2 * 48 * 4
    assert split.n_steps == 96


def test_a_team_that_nobody_steps_is_reported():
    split = TeamSplit(make_swarm2d_vec_env(n_copies=1, seed=0), timeout=0.2)
    team0 = split.team_env(0)
    team0.reset()
    with pytest.raises(TimeoutError, match=r"teams \[1\]"):
        team0.step(np.zeros((4, 3)))
