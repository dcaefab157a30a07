"""TwinDQN: twin Q heads with double Q-learning and a clipped (min) bootstrap target."""

from sb3_ext.twin_dqn.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, TwinDQNPolicy, TwinQNetwork
from sb3_ext.twin_dqn.twin_dqn import TwinDQN

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "TwinDQN", "TwinDQNPolicy", "TwinQNetwork"]
