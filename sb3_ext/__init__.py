"""sb3-ext: training strategies that plug into Stable-Baselines3's own ``learn()`` loop.

Public classes are resolved lazily (PEP 562) so that ``import sb3_ext`` stays cheap: it only
registers the gymnasium environments, which is what subprocess workers and ``gymnasium.make``
need. ``from sb3_ext import TwinDQN`` imports the algorithm's module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from sb3_ext.envs.registration import register_envs

__version__ = "0.1.0"

# public name -> module that defines it; each area keeps its own block.
_LAZY_EXPORTS: dict[str, str] = {
    # --- lattice growth and curriculum callbacks ---
    "LatticeKMC": "sb3_ext.envs.lattice.engine",
    "SOSPhysics": "sb3_ext.envs.lattice.physics",


    # --- value-based algorithms ---


    # --- continuous control and offline data ---
    "DelayedTD3": "sb3_ext.delayed_td3",
    "DecayingNormalActionNoise": "sb3_ext.common.noise",
    "DecayingOrnsteinUhlenbeckActionNoise": "sb3_ext.common.noise",
    "DecayingNoise": "sb3_ext.callbacks.noise",
    "NoiseSigmaLogger": "sb3_ext.callbacks.noise",


    # --- REINFORCE and RLHF ---
    "REINFORCE": "sb3_ext.reinforce",

    # --- multi-agent ---


    # --- Phase 2 ---


}

__all__ = ["__version__", "register_envs", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY_EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sb3_ext' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))


register_envs()
