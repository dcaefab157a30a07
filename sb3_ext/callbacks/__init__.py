"""SB3 callbacks shipped with sb3-ext; each also works from an rl-zoo3 YAML ``callback:`` entry."""

from sb3_ext.callbacks.noise import DecayingNoise, NoiseSigmaLogger
