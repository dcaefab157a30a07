"""The decaying noises' earlier import path, kept because saved models pickle a noise by it.

The noises live in :mod:`sb3_ext.noise.processes`.
"""

from sb3_ext.noise.processes import (
    DecayingNormalActionNoise,
    DecayingOrnsteinUhlenbeckActionNoise,
    SigmaSchedule,
)

__all__ = ["DecayingNormalActionNoise", "DecayingOrnsteinUhlenbeckActionNoise", "SigmaSchedule"]
