"""EpisodicRolloutBuffer: reward-to-go on complete episodes, tails carried across rollouts."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_ext.reinforce import EpisodicDictRolloutBuffer, EpisodicRolloutBuffer

GAMMA = 0.5


def make_buffer(n_steps: int, n_envs: int) -> EpisodicRolloutBuffer:
    return EpisodicRolloutBuffer(
        n_steps, spaces.Box(-np.inf, np.inf, (1,)), spaces.Discrete(2), device="cpu", gamma=GAMMA, n_envs=n_envs
    )


def fill(buffer: EpisodicRolloutBuffer, rewards: np.ndarray, starts: np.ndarray, dones: np.ndarray) -> None:
    """One rollout; each observation is its reward, so the batch order can be read back from it."""
    buffer.reset()
    for step in range(len(rewards)):
        obs = rewards[step].reshape(-1, 1)
        n_envs = len(rewards[step])
        buffer.add(obs, np.zeros(n_envs), rewards[step], starts[step], th.zeros(n_envs), th.zeros(n_envs))
    buffer.compute_returns_and_advantage(th.zeros(len(dones)), dones)


def test_reward_to_go_with_a_carried_tail_and_two_envs():
    buffer = make_buffer(n_steps=5, n_envs=2)
    # env 0: an episode ends after step 2, steps 3-4 are an unfinished tail.
    # env 1: one episode runs through both rollouts.
    fill(
        buffer,
        rewards=np.array([[1, 1], [2, 1], [3, 1], [4, 1], [5, 1]], dtype=np.float32),
        starts=np.array([[1, 1], [0, 0], [0, 0], [1, 0], [0, 0]], dtype=np.float32),
        dones=np.array([False, False]),
    )
    # 1 + .5*2 + .25*3, 2 + .5*3, 3
    np.testing.assert_allclose(buffer.batch["returns"], [2.75, 3.5, 3.0])
    np.testing.assert_allclose(buffer.batch["observations"].ravel(), [1, 2, 3])
    assert buffer.n_episodes == 1
    assert np.isnan(buffer.returns[3:, 0]).all() and np.isnan(buffer.returns[:, 1]).all()

    fill(
        buffer,
        rewards=np.array([[6, 1], [7, 1], [8, 1], [9, 1], [10, 1]], dtype=np.float32),
        starts=np.array([[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]], dtype=np.float32),
        dones=np.array([True, True]),
    )
    env0 = [
        4 + 0.5 * 5 + 0.25 * 6 + 0.125 * 7,  # carried 4, 5 + this rollout's 6, 7
        5 + 0.5 * 6 + 0.25 * 7,
        6 + 0.5 * 7,
        7,
        8 + 0.5 * 9 + 0.25 * 10,
        9 + 0.5 * 10,
        10,
    ]
    env1 = [sum(GAMMA**k for k in range(10 - t)) for t in range(10)]  # ten rewards of 1
    np.testing.assert_allclose(buffer.batch["returns"], env0 + env1, rtol=1e-6)
    np.testing.assert_allclose(buffer.batch["observations"].ravel(), [4, 5, 6, 7, 8, 9, 10] + [1] * 10)
    assert buffer.n_episodes == 3
    assert buffer.n_transitions == 17
    # The (n_steps, n_envs) view holds this rollout's own steps.
    np.testing.assert_allclose(buffer.returns[:, 0], env0[2:], rtol=1e-6)


def test_recomputing_after_relabelling_is_idempotent():
    buffer = make_buffer(n_steps=3, n_envs=1)
    starts = np.array([[1], [0], [0]], dtype=np.float32)
    fill(buffer, np.array([[1], [1], [1]], dtype=np.float32), starts, np.array([False]))
    fill(buffer, np.array([[1], [1], [1]], dtype=np.float32), np.zeros((3, 1), np.float32), np.array([True]))
    buffer.rewards[-1, 0] += 8.0  # e.g. a feedback reward added after the first computation
    buffer.compute_returns_and_advantage(th.zeros(1), np.array([True]))
    # one six-step episode, the last reward now 9
    expected = [sum(GAMMA**k for k in range(5 - t)) + GAMMA ** (5 - t) * 9 for t in range(6)]
    np.testing.assert_allclose(buffer.batch["returns"], expected, rtol=1e-6)
    assert buffer.n_episodes == 1


def test_a_reset_between_rollouts_drops_the_tail():
    buffer = make_buffer(n_steps=2, n_envs=1)
    fill(buffer, np.array([[1], [2]], dtype=np.float32), np.array([[1], [0]], np.float32), np.array([False]))
    assert buffer.n_transitions == 0
    # The env was reset (learn(reset_num_timesteps=True)): the rollout starts a new episode.
    fill(buffer, np.array([[3], [4]], dtype=np.float32), np.array([[1], [0]], np.float32), np.array([True]))
    np.testing.assert_allclose(buffer.batch["returns"], [3 + 0.5 * 4, 4])


def test_get_yields_minibatches_of_complete_transitions_only():
    buffer = make_buffer(n_steps=4, n_envs=1)
    starts = np.array([[1], [0], [1], [0]], dtype=np.float32)
    fill(buffer, np.arange(1, 5, dtype=np.float32).reshape(4, 1), starts, np.array([False]))
    batches = list(buffer.get(batch_size=1))
    assert sorted(b.observations.item() for b in batches) == [1, 2]
    assert all(th.equal(b.returns, b.advantages) for b in batches)


def test_dict_observations_are_refused():
    with pytest.raises(ValueError, match="EpisodicDictRolloutBuffer takes Dict"):
        EpisodicRolloutBuffer(4, spaces.Dict({"x": spaces.Discrete(2)}), spaces.Discrete(2))


def test_dict_buffer_splits_like_the_box_buffer_across_rollouts():
    """Same rewards, starts and a carried tail: the Dict buffer yields the Box buffer's batch."""
    box = make_buffer(n_steps=3, n_envs=2)
    dict_buffer = EpisodicDictRolloutBuffer(
        3, spaces.Dict({"r": spaces.Box(-np.inf, np.inf, (1,)), "twice": spaces.Box(-np.inf, np.inf, (1,))}),
        spaces.Discrete(2), device="cpu", gamma=GAMMA, n_envs=2,
    )  # fmt: skip
    rollouts = [
        (np.array([[1, 1], [2, 1], [3, 1]], np.float32), np.array([[1, 1], [0, 0], [1, 0]], np.float32), [False, False]),
        (np.array([[4, 2], [5, 2], [6, 2]], np.float32), np.array([[0, 0], [0, 0], [1, 1]], np.float32), [True, False]),
    ]
    for rewards, starts, dones in rollouts:
        fill(box, rewards, starts, np.array(dones))
        dict_buffer.reset()
        for step in range(len(rewards)):
            obs = {"r": rewards[step].reshape(-1, 1), "twice": 2 * rewards[step].reshape(-1, 1)}
            dict_buffer.add(obs, np.zeros(2), rewards[step], starts[step], th.zeros(2), th.zeros(2))
        dict_buffer.compute_returns_and_advantage(th.zeros(2), np.array(dones))
        assert dict_buffer.n_transitions == box.n_transitions > 0
        np.testing.assert_array_equal(dict_buffer.batch["returns"], box.batch["returns"])
        np.testing.assert_array_equal(dict_buffer.batch["observations"]["r"], box.batch["observations"])
        np.testing.assert_array_equal(dict_buffer.batch["observations"]["twice"], 2 * box.batch["observations"])
        (samples,) = list(dict_buffer.get())
        assert set(samples.observations) == {"r", "twice"}
        assert th.equal(samples.returns, samples.advantages)
