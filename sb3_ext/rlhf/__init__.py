"""Human feedback for reward relabelling: feedback sources, aggregation, the Bradley–Terry reward
model, and the callbacks that apply it (:class:`RLHFRewardRelabel`, :class:`RLHFEntropyTemperature`).
"""

from sb3_ext.rlhf.config import RLHFConfig
from sb3_ext.rlhf.feedback import FeedbackSource, Preference, Rating, Segment
from sb3_ext.rlhf.file_feedback import FileFeedback
from sb3_ext.rlhf.relabel import RLHFRewardRelabel
from sb3_ext.rlhf.reward_model import BradleyTerryRewardModel
from sb3_ext.rlhf.scripted import (
    PreferenceFeedback,
    ScriptedFeedback,
    preference_from_rater,
)
from sb3_ext.rlhf.temperature import RLHFEntropyTemperature

__all__ = [
    "BradleyTerryRewardModel",
    "FeedbackSource",
    "FileFeedback",
    "Preference",
    "PreferenceFeedback",
    "RLHFConfig",
    "RLHFEntropyTemperature",
    "RLHFRewardRelabel",
    "Rating",
    "ScriptedFeedback",
    "Segment",
    "preference_from_rater",
]
