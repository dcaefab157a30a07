"""Multi-agent plumbing for SB3: PettingZoo envs as VecEnvs of agent slots, and what algorithms need on top.

Not tied to any one environment: MAAC, SharedActor and the zoo use it for Swarm2D and for any
PettingZoo ``ParallelEnv``.
"""
