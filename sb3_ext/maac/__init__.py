"""MAAC: Actor-Attention-Critic (Iqbal & Sha, ICML 2019) inside SB3's off-policy loop."""

from sb3_ext.maac.buffers import JointReplayBuffer
from sb3_ext.maac.maac import MAAC
from sb3_ext.maac.policies import AttentionCritic, MAACPolicy, NCAMAACPolicy

__all__ = ["MAAC", "AttentionCritic", "JointReplayBuffer", "MAACPolicy", "NCAMAACPolicy"]
