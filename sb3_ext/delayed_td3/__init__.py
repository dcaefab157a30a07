"""DelayedTD3: SB3's TD3 with twin-critic gap diagnostics and a divergence guard."""

from sb3_ext.delayed_td3.delayed_td3 import DelayedTD3

__all__ = ["DelayedTD3"]
