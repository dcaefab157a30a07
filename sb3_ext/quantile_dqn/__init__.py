"""QuantileDQN: QR-DQN with twin quantile heads, risk-aware (CVaR) acting and return-distribution diagnostics."""

from sb3_ext.quantile_dqn.policies import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    QuantileDQNPolicy,
    TwinQuantileNetwork,
)
from sb3_ext.quantile_dqn.quantile_dqn import QuantileDQN

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "QuantileDQN", "QuantileDQNPolicy", "TwinQuantileNetwork"]
