"""The recent transitions seen by the relabelling callback, with episode ids and buffer positions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from sb3_ext.rlhf.feedback import Segment


@dataclass
class _EpisodeSpan:
    env: int
    first_position: int  # log position of the episode's step 0
    last_position: int  # log position of its latest step


class TransitionLog:
    """A ring of the last ``capacity`` vectorised steps (``n_envs`` transitions each).

    A *position* counts vectorised steps from 0 over the whole run; it lives in ring slot
    ``position % capacity`` until ``capacity`` newer steps arrive. For each transition the log
    keeps what a rater needs (observation, action, next observation, env reward, done), its episode id
    and step, and the replay/rollout-buffer position it was written to, together with the reward
    adjustment currently applied there (so relabelling replaces it rather than adding twice).

    Episode ids count episodes in the order they begin: at the start the envs hold episodes
    ``0 .. n_envs - 1``, and each finished episode's env continues with the next free id.
    """

    def __init__(self, capacity: int, n_envs: int, observation_space: spaces.Space, action_space: spaces.Space):
        if capacity < 1:
            raise ValueError(f"capacity: expected a positive number of steps, got {capacity}")
        self.capacity = capacity
        self.n_envs = n_envs
        obs_shape = observation_space.shape or ()
        action_shape = action_space.shape or ()
        grid = (capacity, n_envs)
        self.observations = np.zeros((*grid, *obs_shape), dtype=observation_space.dtype)
        self.next_observations = np.zeros_like(self.observations)
        self.actions = np.zeros((*grid, *action_shape), dtype=action_space.dtype)
        self.rewards = np.zeros(grid, dtype=np.float32)
        self.dones = np.zeros(grid, dtype=bool)
        self.episodes = np.zeros(grid, dtype=np.int64)
        self.steps = np.zeros(grid, dtype=np.int64)
        self.applied = np.zeros(grid, dtype=np.float32)
        self.buffer_positions = np.zeros(capacity, dtype=np.int64)
        self.total = 0  # positions added so far

        self._current_episode = np.arange(n_envs, dtype=np.int64)
        self._current_step = np.zeros(n_envs, dtype=np.int64)
        self._next_episode = n_envs
        # Spans of the episodes that still have transitions in the log, in order of their start.
        self._spans: dict[int, _EpisodeSpan] = {}
        self.episodes_forgotten = 0  # grows whenever episodes leave the log

    @property
    def oldest(self) -> int:
        """The oldest position still in the log."""
        return max(0, self.total - self.capacity)

    def slots(self, first: int, stop: int) -> np.ndarray:
        """Ring slots of positions ``first .. stop - 1``."""
        return np.arange(first, stop) % self.capacity

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        next_observations: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        buffer_position: int,
    ) -> None:
        """Record one vectorised step (``next_observations`` must hold terminal observations at dones)."""
        slot = self.total % self.capacity
        self.observations[slot] = observations
        self.actions[slot] = np.reshape(actions, self.actions.shape[1:])
        self.next_observations[slot] = next_observations
        self.rewards[slot] = rewards
        self.dones[slot] = dones
        self.episodes[slot] = self._current_episode
        self.steps[slot] = self._current_step
        self.applied[slot] = 0.0
        self.buffer_positions[slot] = buffer_position
        for env, episode in enumerate(self._current_episode):
            span = self._spans.setdefault(int(episode), _EpisodeSpan(env, self.total, self.total))
            span.last_position = self.total
        self.total += 1

        self._current_step += 1
        self.begin_episodes(np.flatnonzero(dones))
        self._forget_evicted_episodes()

    def begin_episodes(self, envs: np.ndarray) -> None:
        """Start new episodes in ``envs`` (an outside env reset); envs already at step 0 are left alone."""
        for env in envs:
            if self._current_step[env] > 0:
                self._current_episode[env] = self._next_episode
                self._current_step[env] = 0
                self._next_episode += 1

    def _forget_evicted_episodes(self) -> None:
        evicted = [episode for episode, span in self._spans.items() if span.last_position < self.oldest]
        for episode in evicted:
            del self._spans[episode]
        self.episodes_forgotten += len(evicted)

    def check_fits(self, length: int, what: str) -> None:
        """Raise if ``length`` consecutive steps can never be in the log at once."""
        if length > self.capacity:
            raise ValueError(
                f"{what}: {length} steps do not fit in the {self.capacity} recent steps the callback keeps "
                "(its window, capped by the buffer size or n_steps)"
            )

    def has_episode(self, episode: int) -> bool:
        """Whether some transition of ``episode`` is still in the log."""
        return episode in self._spans

    def segment(self, episode: int, start: int, end: int) -> Segment | None:
        """Steps ``start .. end - 1`` of ``episode``, or None if any of them is not in the log."""
        span = self._spans.get(episode)
        if span is None or not 0 <= start < end:
            return None
        first, last = span.first_position + start, span.first_position + end - 1
        if first < self.oldest or last > span.last_position:
            return None
        slots = self.slots(first, last + 1)
        return Segment(
            episode=episode,
            start=start,
            observations=self.observations[slots, span.env].copy(),
            actions=self.actions[slots, span.env].copy(),
            next_observations=self.next_observations[slots, span.env].copy(),
        )

    def sample_segment(self, rng: np.random.Generator, length: int, attempts: int = 100) -> Segment | None:
        """A uniformly drawn run of ``length`` consecutive steps of one episode, or None if none is found."""
        n_starts = self.total - length + 1 - self.oldest
        if n_starts <= 0:
            return None
        for _ in range(attempts):
            first = self.oldest + int(rng.integers(n_starts))
            env = int(rng.integers(self.n_envs))
            slots = self.slots(first, first + length)
            episode = int(self.episodes[slots[0], env])
            # One env's consecutive positions belong to one episode iff the first and last ids agree.
            if self.episodes[slots[-1], env] == episode:
                return self.segment(episode, int(self.steps[slots[0], env]), int(self.steps[slots[0], env]) + length)
        return None
