"""Hand-written reference policies for ``LatticeGrowth-v0``: neutral physics and
"deposit in valleys, hop downhill".

Both are plain functions of the observation (a single one or a batch), and both come wrapped
in a tiny class with SB3's ``predict`` signature so that ``evaluate_policy`` and any code that
evaluates a model can evaluate them the same way.
"""

from __future__ import annotations

import numpy as np

from sb3_ext.envs.lattice.env import EVENTS_PER_AGENT
from sb3_ext.envs.lattice.fixed_agents import HEIGHT_CLIP, N_AGENT_EXTRAS, N_GLOBALS, split_observation

# Gains (action units per monolayer) measured on 8x8x5 at 600 K to give about the ESS the
# curriculum issue quotes (~0.85); see the README section for the figures.
HOP_GAIN = 0.5
DEPOSIT_GAIN = 0.5


def swarm_size(obs: np.ndarray, patch_radius: int = 2) -> int:
    """Number of agents an observation of this length describes."""
    side = 2 * patch_radius + 1
    n_agents, remainder = divmod(np.shape(obs)[-1] - N_GLOBALS, side * side + N_AGENT_EXTRAS)
    if remainder or n_agents < 1:
        raise ValueError(f"obs: a last dimension of {np.shape(obs)[-1]} does not match patch_radius={patch_radius}")
    return n_agents


def neutral_action(obs: np.ndarray, patch_radius: int = 2) -> np.ndarray:
    """Zero biases for every agent: exact KMC, ESS == 1."""
    n_swarm = swarm_size(obs, patch_radius)
    return np.zeros((*np.shape(obs)[:-1], n_swarm * EVENTS_PER_AGENT), dtype=np.float32)


def valley_downhill_action(
    obs: np.ndarray, patch_radius: int = 2, hop_gain: float = HOP_GAIN, deposit_gain: float = DEPOSIT_GAIN
) -> np.ndarray:
    """Favour hops that lower the hopping atom and deposition on columns below their neighbours.

    Works in each agent's frame, which is how the observation shows the patch and how the
    environment reads the hop biases. For a neighbour column ``rel`` monolayers above the agent's
    column, the hopping atom would land ``rel + 1`` levels above where it is: the hop bias is ``-hop_gain * (rel + 1)``
    (a step down is favoured, a move along a terrace is neutral, a climb is discouraged). The
    deposition bias is ``deposit_gain`` times the mean height of the four neighbours above the
    column (a valley attracts atoms, a hilltop repels them). Action units: +-1 is +-max_bias.
    """
    n_swarm = swarm_size(obs, patch_radius)
    patches, _, _ = split_observation(obs, n_swarm, patch_radius)
    r = patch_radius
    # +x, -x, +y, -y neighbours, in monolayers relative to the agent's column
    rel = HEIGHT_CLIP * np.stack(
        [patches[..., r + 1, r], patches[..., r - 1, r], patches[..., r, r + 1], patches[..., r, r - 1]], axis=-1
    )
    hop = -hop_gain * (rel + 1.0)
    deposit = deposit_gain * rel.mean(axis=-1, keepdims=True)
    action = np.clip(np.concatenate([hop, deposit], axis=-1), -1.0, 1.0)
    return action.reshape(*np.shape(obs)[:-1], n_swarm * EVENTS_PER_AGENT).astype(np.float32)


class NeutralPolicy:
    """Zero-bias policy with SB3's ``predict`` signature (for ``evaluate_policy``)."""

    def __init__(self, patch_radius: int = 2) -> None:
        self.patch_radius = patch_radius

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        return neutral_action(observation, self.patch_radius), state


class ValleyDownhillPolicy:
    """ "Deposit in valleys, hop downhill" with SB3's ``predict`` signature."""

    def __init__(self, patch_radius: int = 2, hop_gain: float = HOP_GAIN, deposit_gain: float = DEPOSIT_GAIN) -> None:
        self.patch_radius = patch_radius
        self.hop_gain = hop_gain
        self.deposit_gain = deposit_gain

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        return valley_downhill_action(observation, self.patch_radius, self.hop_gain, self.deposit_gain), state
