"""RLHFConfig: how feedback is gathered, combined and weighed against the env reward."""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sb3_ext.rlhf.aggregation import AGGREGATIONS
from sb3_ext.rlhf.feedback import FeedbackSource
from sb3_ext.rlhf.file_feedback import FileFeedback
from sb3_ext.rlhf.scripted import PreferenceFeedback, ScriptedFeedback


def _import_callable(path: str, where: str) -> Any:
    module_name, _, attribute = path.partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        value = None
    if not callable(value):
        raise ValueError(f"{where}: expected 'module:function' naming a callable, got {path!r}")
    return value


def source_from_spec(spec: FeedbackSource | dict[str, Any], where: str = "sources") -> FeedbackSource:
    """A feedback source, or one described by a dict (as in an rl-zoo3 YAML ``callback:`` entry).

    ``{"file": "ratings.jsonl"}``, ``{"scripted": "pkg.module:rater", "segment_length": 25}`` or
    ``{"preference": "pkg.module:chooser", ...PreferenceFeedback arguments}``.
    """
    if isinstance(spec, FeedbackSource):
        return spec
    kinds = {"file", "scripted", "preference"}
    if not isinstance(spec, dict) or len(kinds & spec.keys()) != 1:
        raise ValueError(
            f"{where}: expected a FeedbackSource or a dict with one of 'file', 'scripted', 'preference', got {spec!r}"
        )
    options = dict(spec)
    try:
        if "file" in options:
            return FileFeedback(options.pop("file"), **options)
        if "scripted" in options:
            return ScriptedFeedback(_import_callable(options.pop("scripted"), f"{where}.scripted"), **options)
        return PreferenceFeedback(_import_callable(options.pop("preference"), f"{where}.preference"), **options)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


@dataclass
class RLHFConfig:
    """Settings of :class:`~sb3_ext.rlhf.relabel.RLHFRewardRelabel`.

    :param feedback_weight: the relabelled reward is ``env reward + feedback_weight * feedback``
    :param aggregation: ``'mean'`` or ``'median'`` of the ratings covering a transition, or
        ``'bradley_terry'``: a reward model fit on the sources' pairwise preferences
    :param window: how many of the most recent buffer positions are relabelled (a position holds
        one transition per env; capped by the buffer's size, or by ``n_steps`` on-policy)
    :param min_feedback: a transition covered by fewer ratings (or, with ``'bradley_terry'``, a
        reward model fit on fewer preferences) keeps its env reward
    :param sources: the feedback sources (:class:`ScriptedFeedback`, :class:`FileFeedback`,
        :class:`PreferenceFeedback`) or dicts describing them, see :func:`source_from_spec`
    :param reward_model_kwargs: arguments of the Bradley–Terry reward model
    """

    feedback_weight: float = 1.0
    aggregation: str = "mean"
    window: int = 1000
    min_feedback: int = 1
    sources: Sequence[FeedbackSource | dict[str, Any]] = ()
    reward_model_kwargs: dict[str, Any] = field(default_factory=dict)
    #: ``sources`` with every dict spec built into its source (set by ``__post_init__``).
    feedback_sources: list[FeedbackSource] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: expected one of {', '.join(map(repr, AGGREGATIONS))}, got {self.aggregation!r}")
        if not isinstance(self.feedback_weight, (int, float)) or not math.isfinite(self.feedback_weight):
            raise ValueError(f"feedback_weight: expected a finite number, got {self.feedback_weight!r}")
        if not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window: expected a positive integer, got {self.window!r}")
        if not isinstance(self.min_feedback, int) or self.min_feedback < 0:
            raise ValueError(f"min_feedback: expected a non-negative integer, got {self.min_feedback!r}")
        if not self.sources:
            raise ValueError("sources: expected at least one feedback source")
        self.sources = self.feedback_sources = [source_from_spec(spec, f"sources[{i}]") for i, spec in enumerate(self.sources)]
        wants_preferences = self.aggregation == "bradley_terry"
        for i, source in enumerate(self.feedback_sources):
            if not (source.gives_preferences if wants_preferences else source.gives_ratings):
                needs = "pairwise preferences" if wants_preferences else "ratings"
                raise ValueError(
                    f"sources[{i}]: {type(source).__name__} gives no {needs}, which aggregation={self.aggregation!r} uses"
                )
