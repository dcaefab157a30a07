"""One bad feedback line never stops training: huge scores, huge integers and deep nesting are skipped."""

import warnings

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

from sb3_ext.rlhf import RLHFRewardRelabel
from sb3_ext.rlhf import FileFeedback, Rating

from test_rlhf_feedback import filled_log

BAD_LINES = [
    '{"episode": 0, "start": 0, "end": 3, "score": 1e300}',
    '{"episode": 0, "start": 0, "end": 3, "score": ' + "9" * 400 + "}",
    '{"episode": 0, "start": 0, "end": 3, "score": -1e7}',
    "[" * 50_000 + "]" * 50_000,
    '{"first": {"episode": 0, "start": 0, "end": 1}, "second": {"episode": 1, "start": 0, "end": 1}, "preferred": []}',
]


def test_out_of_range_and_unparsable_lines_are_skipped_with_a_warning(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join([*BAD_LINES, '{"episode": 0, "start": 0, "end": 3, "score": 1e6}']) + "\n")
    source = FileFeedback(path)
    with pytest.warns(UserWarning) as caught:
        source.update(filled_log(6, dones_at={0: [2]}))
    skipped = [str(w.message) for w in caught]
    assert len(skipped) == len(BAD_LINES)
    assert (
        f"{path}:1: skipped malformed feedback line: score: expected a number between -1e+06 and 1e+06, got 1e+300"
        in skipped[0]
    )
    assert "an integer of 400 digits" in skipped[1]
    assert "nested too deeply" in skipped[3]
    assert all(len(message) < 300 for message in skipped)
    assert source.ratings == [Rating(0, 0, 3, 1e6)]


def test_ppo_trains_through_a_feedback_file_with_bad_lines(tmp_path):
    th.set_num_threads(1)
    path = tmp_path / "feedback.jsonl"
    # Episodes 0..3 all exist early in CartPole; one sane rating next to the bad ones.
    lines = [line.replace('"episode": 0', f'"episode": {e}') for e in range(4) for line in BAD_LINES[:3]]
    path.write_text("\n".join([*lines, '{"episode": 1, "start": 0, "end": 5, "score": 1.0}']) + "\n")
    relabel = RLHFRewardRelabel(sources=[{"file": str(path)}], feedback_weight=1.0)
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.learn(256, callback=relabel)
    assert model.num_timesteps == 256
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    assert np.isfinite(model.rollout_buffer.rewards).all()
