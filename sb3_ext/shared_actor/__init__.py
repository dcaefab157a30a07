"""SharedActor: PPO with one actor-critic per team of agents and team-specific rollout buffers."""

from sb3_ext.shared_actor.policies import MultiTeamPolicy
from sb3_ext.shared_actor.shared_actor import SharedActor

__all__ = ["MultiTeamPolicy", "SharedActor"]
