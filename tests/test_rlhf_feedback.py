"""RLHF building blocks: transition log, sources, aggregation, Bradley–Terry model, config validation."""

import math
import os

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_ext.rlhf import (
    BradleyTerryRewardModel,
    FileFeedback,
    Preference,
    PreferenceFeedback,
    Rating,
    RLHFConfig,
    ScriptedFeedback,
    Segment,
    preference_from_rater,
)
from sb3_ext.rlhf.aggregation import aggregate_ratings
from sb3_ext.rlhf.log import TransitionLog
from sb3_ext.rlhf.relabel import RLHFRewardRelabel

th.set_num_threads(1)  # small networks on a shared machine: one thread is faster

OBS_SPACE = spaces.Box(-10.0, 10.0, (2,), dtype=np.float32)


def filled_log(n_steps: int, dones_at: dict[int, list[int]], capacity: int = 100, n_envs: int = 2) -> TransitionLog:
    """Step t of env e observes (t, e) and takes action t % 2; ``dones_at[e]`` lists steps ending episodes."""
    log = TransitionLog(capacity, n_envs, OBS_SPACE, spaces.Discrete(2))
    for t in range(n_steps):
        obs = np.array([[t, e] for e in range(n_envs)], dtype=np.float32)
        dones = np.array([t in dones_at.get(e, []) for e in range(n_envs)])
        log.add(obs, np.full(n_envs, t % 2), obs + 0.5, np.full(n_envs, float(t)), dones, buffer_position=t)
    return log


def test_log_numbers_episodes_in_order_of_their_start():
    log = filled_log(6, dones_at={0: [1, 3], 1: [2]})
    np.testing.assert_array_equal(log.episodes[:6, 0], [0, 0, 2, 2, 4, 4])
    np.testing.assert_array_equal(log.episodes[:6, 1], [1, 1, 1, 3, 3, 3])
    np.testing.assert_array_equal(log.steps[:6, 0], [0, 1, 0, 1, 0, 1])
    segment = log.segment(3, 1, 3)
    np.testing.assert_array_equal(segment.observations, [[4, 1], [5, 1]])
    np.testing.assert_array_equal(segment.actions, [0, 1])
    assert log.segment(3, 1, 4) is None  # step 3 of episode 3 has not happened yet
    assert log.segment(9, 0, 1) is None


def test_log_forgets_what_leaves_the_ring():
    log = filled_log(7, dones_at={0: [1]}, capacity=4, n_envs=1)
    assert log.oldest == 3
    assert not log.has_episode(0) and log.has_episode(1)
    assert log.segment(1, 0, 2) is None  # step 0 of episode 1 (position 2) was evicted
    np.testing.assert_array_equal(log.segment(1, 1, 5).observations[:, 0], [3, 4, 5, 6])
    np.testing.assert_array_equal(log.buffer_positions[log.slots(3, 7)], [3, 4, 5, 6])


def test_sampled_segments_never_straddle_episodes():
    log = filled_log(40, dones_at={0: [4, 9, 21], 1: [13, 30]})
    rng = np.random.default_rng(0)
    for _ in range(50):
        segment = log.sample_segment(rng, 5)
        assert len(segment) == 5
        env = int(segment.observations[0, 1])
        steps = segment.observations[:, 0].astype(int)
        np.testing.assert_array_equal(np.diff(steps), 1)
        assert set(log.episodes[steps, env]) == {segment.episode}


def test_scripted_feedback_rates_each_transition_once_and_segments_when_complete():
    log = filled_log(3, dones_at={})
    per_transition = ScriptedFeedback(lambda obs, action, next_obs: obs[0] + 10 * obs[1] + next_obs[0])
    per_transition.update(log)
    per_transition.update(log)  # nothing new
    assert sorted((r.episode, r.start, r.score) for r in per_transition.ratings) == [
        (0, 0, 0.5), (0, 1, 2.5), (0, 2, 4.5), (1, 0, 10.5), (1, 1, 12.5), (1, 2, 14.5)
    ]

    log = filled_log(5, dones_at={0: [2]}, n_envs=1)
    by_segment = ScriptedFeedback(lambda segment: float(segment.observations[:, 0].sum()), segment_length=2)
    by_segment.update(log)
    # episode 0: steps 0-1 then the short last piece 2; episode 1: steps 0-1 (positions 3, 4)
    assert [(r.episode, r.start, r.end, r.score) for r in by_segment.ratings] == [
        (0, 0, 2, 1.0), (0, 2, 3, 2.0), (1, 0, 2, 7.0)
    ]


def test_aggregation_mean_and_median_by_hand():
    ratings = [Rating(0, 0, 3, 1.0), Rating(0, 1, 2, 4.0), Rating(0, 1, 3, 10.0), Rating(5, 0, 9, 7.0)]
    episodes = np.array([0, 0, 0, 0, 1])
    steps = np.array([0, 1, 2, 3, 0])
    mean, counts = aggregate_ratings(ratings, episodes, steps, "mean")
    median, _ = aggregate_ratings(ratings, episodes, steps, "median")
    np.testing.assert_array_equal(counts, [1, 3, 2, 0, 0])
    np.testing.assert_allclose(mean, [1.0, 5.0, 5.5, 0.0, 0.0])
    np.testing.assert_allclose(median, [1.0, 4.0, 5.5, 0.0, 0.0])


def test_aggregation_matches_brute_force_on_random_ratings():
    rng = np.random.default_rng(0)
    episodes = np.repeat(np.arange(3, 9), 7)  # episodes 3-8, steps 0-6 each, shuffled
    steps = np.tile(np.arange(7), 6)
    order = rng.permutation(len(episodes))
    episodes, steps = episodes[order], steps[order]
    ratings = []
    for _ in range(60):
        start = int(rng.integers(0, 8))
        end = start + int(rng.integers(1, 4)) if rng.random() < 0.9 else 10**9
        ratings.append(Rating(int(rng.integers(0, 11)), start, end, float(rng.integers(-5, 6))))
    for method, combine in (("mean", np.mean), ("median", np.median)):
        values, counts = aggregate_ratings(ratings, episodes, steps, method)
        for i, (episode, step) in enumerate(zip(episodes, steps, strict=False)):
            scores = [r.score for r in ratings if r.episode == episode and r.start <= step < r.end]
            assert counts[i] == len(scores)
            assert values[i] == pytest.approx(combine(scores) if scores else 0.0)


def write(path, text: str, mode: str = "a") -> None:
    with open(path, mode) as file:
        file.write(text)


def test_file_feedback_follows_appends_rewrites_and_skips_bad_lines(tmp_path):
    path = tmp_path / "ratings.jsonl"
    log = filled_log(6, dones_at={0: [2]})
    source = FileFeedback(path)
    with pytest.warns(UserWarning, match="does not exist"):
        source.update(log)

    write(path, '{"episode": 0, "start": 0, "end": 3, "score": -1.0}\n{"episode": 1, "sta')
    source.update(log)
    assert source.ratings == [Rating(0, 0, 3, -1.0)]  # the unfinished line waits

    write(path, 'rt": 2, "end": 4, "score": 2}\nnot json\n{"episode": 1, "start": 3, "end": 2, "score": 1}\n')
    with pytest.warns(UserWarning) as caught:
        source.update(log)
    messages = [str(w.message) for w in caught]
    assert any(f"{path}:3: skipped malformed feedback line: not JSON" in m for m in messages)
    assert any(f"{path}:4: skipped malformed feedback line: end" in m for m in messages)
    assert source.ratings == [Rating(0, 0, 3, -1.0), Rating(1, 2, 4, 2.0)]

    preference = (
        '{"first": {"episode": 0, "start": 0, "end": 2}, "second": {"episode": 1, "start": 1, "end": 3}, '
        '"preferred": "second"}\n'
    )
    write(
        path,
        preference
        + '{"first": {"episode": 7, "start": 0, "end": 2}, "second": {"episode": 1, "start": 0, "end": 1}, '
        '"preferred": "first"}\n',
    )
    with pytest.warns(UserWarning, match=f"{path}:6: skipped preference"):
        source.update(log)
    (kept,) = source.preferences
    assert kept.prob_first == 0.0
    np.testing.assert_array_equal(kept.second.observations, [[1, 1], [2, 1]])

    # A rewritten (shorter) file is read again from the top.
    write(path, '{"episode": 2, "start": 0, "end": 1, "score": 5}\n', mode="w")
    os.utime(path, ns=(1, 1))
    source.update(log)
    assert source.ratings == [Rating(2, 0, 1, 5.0)] and source.preferences == []


def test_preference_feedback_asks_the_chooser_about_recent_segments():
    log = filled_log(30, dones_at={0: [14], 1: [20]})
    centre = preference_from_rater(lambda obs, action, next_obs: -abs(obs[0] - 10))
    source = PreferenceFeedback(centre, segment_length=4, pairs_per_query=5, query_interval=50, seed=0)
    source.update(log)
    source.update(log)  # within query_interval: no new pairs
    assert len(source.preferences) == 5
    for preference in source.preferences:
        totals = [-np.abs(s.observations[:, 0] - 10).sum() for s in (preference.first, preference.second)]
        assert preference.prob_first == (0.5 if totals[0] == totals[1] else float(totals[0] > totals[1]))

    bad = PreferenceFeedback(lambda first, second: 2.0, segment_length=4)
    with pytest.raises(ValueError, match=r"chooser.*\[0, 1\].*2\.0"):
        bad.update(log)
    too_long = PreferenceFeedback(centre, segment_length=101)
    with pytest.raises(ValueError, match="segment_length: 101 steps do not fit in the 100 recent steps"):
        too_long.update(log)


def segment_of(xs: list[float]) -> Segment:
    observations = np.array([[x, 0.0] for x in xs], dtype=np.float32)
    return Segment(0, 0, observations, np.zeros(len(xs), dtype=np.int64), observations)


def test_bradley_terry_loss_by_hand():
    model = BradleyTerryRewardModel(OBS_SPACE, spaces.Discrete(2), net_arch=[])
    with th.no_grad():  # r(s, a) = obs[0]
        model.net[0].weight.copy_(th.tensor([[1.0, 0.0, 0.0, 0.0]]))
        model.net[0].bias.zero_()
    preferences = [
        Preference(segment_of([1.0, 2.0]), segment_of([0.5]), 1.0),  # returns 3 vs 0.5
        Preference(segment_of([0.0]), segment_of([1.0, -3.0]), 0.25),  # returns 0 vs -2
    ]
    sigmoid = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    expected = -(math.log(sigmoid(2.5)) + 0.25 * math.log(sigmoid(2.0)) + 0.75 * math.log(sigmoid(-2.0))) / 2
    assert model.loss(preferences).item() == pytest.approx(expected, rel=1e-6)


def test_bradley_terry_recovers_the_ordering_of_a_hidden_reward():
    rng = np.random.default_rng(0)
    hidden = lambda obs: -np.abs(obs[:, 0])  # noqa: E731
    preferences = []
    for _ in range(300):
        first, second = (segment_of(list(rng.uniform(-2, 2, 5))) for _ in range(2))
        gap = hidden(first.observations).sum() - hidden(second.observations).sum()
        preferences.append(Preference(first, second, float(rng.random() < 1 / (1 + np.exp(-gap)))))
    model = BradleyTerryRewardModel(OBS_SPACE, spaces.Discrete(2), epochs=40, seed=0)
    untrained = model.loss(preferences).item()
    trained = model.fit(preferences)
    assert trained < untrained - 0.1
    probe = np.array([[x, 0.0] for x in np.linspace(-2, 2, 21)], dtype=np.float32)
    predicted = model.predict(probe, np.zeros(21, dtype=np.int64))
    assert np.corrcoef(predicted, hidden(probe))[0, 1] > 0.9


def rater(obs, action, next_obs):
    """Module-level so that a YAML-style spec can name it."""
    return float(obs[0])


def test_config_rejects_bad_input():
    scripted = ScriptedFeedback(rater)
    with pytest.raises(ValueError, match="aggregation: expected one of 'mean', 'median', 'bradley_terry', got 'vote'"):
        RLHFConfig(aggregation="vote", sources=[scripted])
    with pytest.raises(ValueError, match="aggregation"):
        RLHFRewardRelabel(aggregation="vote", sources=[scripted])
    with pytest.raises(ValueError, match="sources: expected at least one"):
        RLHFConfig()
    with pytest.raises(ValueError, match="window"):
        RLHFConfig(window=0, sources=[scripted])
    with pytest.raises(ValueError, match=r"sources\[0\]: ScriptedFeedback gives no pairwise preferences"):
        RLHFConfig(aggregation="bradley_terry", sources=[scripted])
    with pytest.raises(ValueError, match=r"sources\[1\]: PreferenceFeedback gives no ratings"):
        RLHFConfig(aggregation="median", sources=[scripted, PreferenceFeedback(lambda a, b: 0.5)])
    with pytest.raises(ValueError, match=r"sources\[0\].scripted: expected 'module:function'"):
        RLHFConfig(sources=[{"scripted": "no_such_module:rater"}])


def test_built_from_an_rl_zoo3_callback_entry(tmp_path):
    from rl_zoo3.utils import get_callback_list

    entry = {
        "sb3_ext.callbacks.RLHFRewardRelabel": {
            "feedback_weight": 0.5,
            "sources": [{"scripted": "tests.test_rlhf_feedback:rater"}, {"file": str(tmp_path / "f.jsonl")}],
        }
    }
    (callback,) = get_callback_list({"callback": [entry]})
    assert isinstance(callback, RLHFRewardRelabel) and callback.config.feedback_weight == 0.5
    scripted, from_file = callback.config.sources
    assert isinstance(scripted, ScriptedFeedback) and scripted.rater(np.array([3.0]), 0, None) == 3.0
    assert isinstance(from_file, FileFeedback) and from_file.path == tmp_path / "f.jsonl"
