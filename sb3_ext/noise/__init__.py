"""Decaying exploration noise: the noise processes and the callbacks that install and log them."""

from sb3_ext.noise.callbacks import DecayingNoise, NoiseSigmaLogger
from sb3_ext.noise.processes import (
    DecayingNormalActionNoise,
    DecayingOrnsteinUhlenbeckActionNoise,
    SigmaSchedule,
)

__all__ = [
    "DecayingNoise",
    "DecayingNormalActionNoise",
    "DecayingOrnsteinUhlenbeckActionNoise",
    "NoiseSigmaLogger",
    "SigmaSchedule",
]
