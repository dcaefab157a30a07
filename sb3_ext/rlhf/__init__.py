"""Human feedback for reward relabelling: feedback sources, aggregation and the Bradley–Terry reward model.

The callback that applies it is :class:`sb3_ext.callbacks.rlhf.RLHFRewardRelabel`.
"""

from sb3_ext.rlhf.config import RLHFConfig
from sb3_ext.rlhf.feedback import FeedbackSource, Preference, Rating, Segment
from sb3_ext.rlhf.file_feedback import FileFeedback
from sb3_ext.rlhf.reward_model import BradleyTerryRewardModel
from sb3_ext.rlhf.scripted import PreferenceFeedback, ScriptedFeedback, preference_from_rater

__all__ = [
    "BradleyTerryRewardModel",
    "FeedbackSource",
    "FileFeedback",
    "Preference",
    "PreferenceFeedback",
    "RLHFConfig",
    "Rating",
    "ScriptedFeedback",
    "Segment",
    "preference_from_rater",
]
