"""Stage files of the lattice curriculum: typed dataclasses and a strict YAML loader.

A stage file has exactly the keys of :class:`StageConfig` (nested sections included). The loader
rejects unknown and missing keys, wrong types and out-of-range values with a :class:`ConfigError`
whose message is one line naming the file, the dotted key and what was expected, so that a typo
such as ``learnig_rate`` cannot silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sb3_ext.curriculum.algorithms import DEFAULT_ALGO, check_algorithm_section

#: Stage number -> file name inside the config folder.
STAGE_FILES: dict[int, str] = {1: "stage1_small.yaml", 2: "stage2_medium.yaml", 3: "stage3_large.yaml"}

#: The stage files shipped with the package (package data), used when no ``--config-dir`` is given.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    """A stage file is missing, unreadable, or has an unknown, missing or badly typed key.

    The message is always one line: a line break from the file (in a key, say) is shown as ``\\n``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


# --- value checks (attached to fields through ``metadata["check"]``) -------------------------

Check = tuple[Callable[[Any], bool], str]

POSITIVE: Check = (lambda v: v > 0, "> 0")
NON_NEGATIVE: Check = (lambda v: v >= 0, ">= 0")
UNIT_OPEN_CLOSED: Check = (lambda v: 0 < v <= 1, "in (0, 1]")
UNIT_CLOSED: Check = (lambda v: 0 <= v <= 1, "in [0, 1]")
AT_LEAST_TWO: Check = (lambda v: v >= 2, ">= 2")
LATTICE_SIDES: Check = (lambda v: all(side >= 3 for side in v), "three sizes >= 3")
AGENT_MODES: Check = (lambda v: v in ("per_column", "fixed"), "'per_column' or 'fixed'")


def _checked(check: Check) -> dict[str, Check]:
    """Field metadata attaching a value check, for ``field(metadata=_checked(...))``."""
    return {"check": check}


# --- the schema -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentsConfig:
    """Who biases the events.

    ``per_column``: ``density`` agents per column (1: every column), each with its own local view
    and reward term, one small network shared by all (``LatticeSwarm-v0`` unfolded into one VecEnv
    slot per agent). ``fixed``: ``n_swarm`` agents and one joint action and reward
    (``LatticeGrowth-v0``, the original four-agent MLP setup).
    """

    mode: str = field(metadata=_checked(AGENT_MODES))
    density: float = field(metadata=_checked(UNIT_OPEN_CLOSED))
    n_swarm: int = field(metadata=_checked(POSITIVE))


@dataclass(frozen=True)
class LocalRewardConfig:
    """Weights of each agent's reward terms in ``per_column`` mode (see ``LatticeSwarm-v0``)."""

    roughness_gain: float = field(metadata=_checked(NON_NEGATIVE))
    ess_cost: float = field(metadata=_checked(NON_NEGATIVE))


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the four reward terms of ``fixed`` mode (signs included), see docs/design.md."""

    roughness_weight: float
    coverage_weight: float
    ratio_weight: float
    ess_weight: float


@dataclass(frozen=True)
class EnvironmentConfig:
    """Constructor arguments of ``LatticeGrowth-v0``."""

    lattice_size: tuple[int, int, int] = field(metadata=_checked(LATTICE_SIDES))
    temperature: float = field(metadata=_checked(POSITIVE))
    deposition_rate: float = field(metadata=_checked(POSITIVE))
    max_steps: int = field(metadata=_checked(POSITIVE))
    n_proposals: int = field(metadata=_checked(POSITIVE))
    patch_radius: int = field(metadata=_checked(POSITIVE))
    agents: AgentsConfig
    local_reward: LocalRewardConfig
    reward_weights: RewardWeights

    @property
    def per_column(self) -> bool:
        """Agents on every column (or a density per column) with a shared per-agent network."""
        return self.agents.mode == "per_column"

    @property
    def env_id(self) -> str:
        """The environment this section configures."""
        return "LatticeSwarm-v0" if self.per_column else "LatticeGrowth-v0"

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gymnasium.make(self.env_id, **kwargs)``."""
        kwargs: dict[str, Any] = {
            "lattice_size": list(self.lattice_size),
            "temperature": self.temperature,
            "deposition_rate": self.deposition_rate,
            "max_steps": self.max_steps,
            "n_proposals": self.n_proposals,
            "patch_radius": self.patch_radius,
        }
        if self.per_column:
            kwargs.update(agent_density=self.agents.density, **dataclasses.asdict(self.local_reward))
        else:
            kwargs.update(n_swarm=self.agents.n_swarm, reward_weights=dataclasses.asdict(self.reward_weights))
        return kwargs


@dataclass(frozen=True)
class PPOConfig:
    """The PPO hyperparameters a stage sets (everything else keeps SB3's default)."""

    learning_rate: float = field(metadata=_checked(POSITIVE))
    n_steps: int = field(metadata=_checked(AT_LEAST_TWO))
    batch_size: int = field(metadata=_checked(AT_LEAST_TWO))
    n_epochs: int = field(metadata=_checked(POSITIVE))
    gamma: float = field(metadata=_checked(UNIT_OPEN_CLOSED))
    gae_lambda: float = field(metadata=_checked(UNIT_CLOSED))
    clip_range: float = field(metadata=_checked(POSITIVE))
    ent_coef: float = field(metadata=_checked(NON_NEGATIVE))
    vf_coef: float = field(metadata=_checked(NON_NEGATIVE))
    max_grad_norm: float = field(metadata=_checked(POSITIVE))


@dataclass(frozen=True)
class HandoffConfig:
    """How a stage takes over from an earlier stage of another algorithm (``handoff:``, optional).

    See :mod:`sb3_ext.curriculum.handoff`: the earlier stage records ``transitions``, each action
    replaced with probability ``recording_epsilon`` by a uniformly random one; the actor is
    distilled for ``distil_epochs``; then an off-policy student's critic (its Q-network for
    Q-learners) is fitted to the recorded returns for ``critic_warmup_steps`` gradient steps in
    ``critic_warmup_rounds`` rounds at ``critic_warmup_learning_rate`` (0 steps: no warm-up), a
    Q-learner keeping the teacher's action greedy with the large-margin loss weighted ``margin_weight``;
    with ``training_margin_weight`` > 0 a TwinDQN or QuantileDQN keeps that term on the recorded
    states, so weighted, through its own training (default 0: only in the warm-up); with
    ``training_bc_weight`` > 0 a DelayedTD3's actor loss becomes TD3+BC's, cloning the teacher's
    actions on the recorded states with that weight, fading linearly to 0 over
    ``training_bc_fade_updates`` actor updates (0: kept; default weight 0: no cloning term).
    """

    transitions: int = field(default=10_000, metadata=_checked(POSITIVE))
    recording_epsilon: float = field(default=0.0, metadata=_checked(UNIT_CLOSED))
    distil_epochs: int = field(default=5, metadata=_checked(NON_NEGATIVE))
    critic_warmup_steps: int = field(default=3000, metadata=_checked(NON_NEGATIVE))
    critic_warmup_rounds: int = field(default=5, metadata=_checked(POSITIVE))
    critic_warmup_learning_rate: float = field(default=1e-3, metadata=_checked(POSITIVE))
    margin_weight: float = field(default=1.0, metadata=_checked(NON_NEGATIVE))
    training_margin_weight: float = field(default=0.0, metadata=_checked(NON_NEGATIVE))
    training_bc_weight: float = field(default=0.0, metadata=_checked(NON_NEGATIVE))
    training_bc_fade_updates: int = field(default=0, metadata=_checked(NON_NEGATIVE))


@dataclass(frozen=True)
class StageConfig:
    """One curriculum stage: its lattice, its algorithm and settings, its budget and its ESS guard.

    A stage trains PPO with its ``ppo:`` section unless the file says ``algo: <name>``; then the
    settings are in the section named after the algorithm (``algo_settings`` here, see
    :mod:`sb3_ext.curriculum.algorithms`) and there is no ``ppo:`` section.
    """

    environment: EnvironmentConfig
    total_timesteps: int = field(metadata=_checked(POSITIVE))
    n_envs: int = field(metadata=_checked(POSITIVE))
    ess_threshold: float = field(metadata=_checked(UNIT_CLOSED))
    ess_patience: int = field(metadata=_checked(POSITIVE))
    ppo: PPOConfig | None = None
    #: How this stage takes over from an earlier stage of another algorithm (defaults when absent).
    handoff: HandoffConfig | None = None
    algo: str = field(default=DEFAULT_ALGO, metadata={"from_file": False})
    algo_settings: dict[str, Any] = field(default_factory=dict, metadata={"from_file": False})
    #: ``presets:`` of the file: name -> overrides in the stage-file layout (``--preset NAME``).
    presets: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"from_file": False})

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in the stage-file layout (lists, not tuples), e.g. for JSON."""
        data = dataclasses.asdict(self)
        data["environment"]["lattice_size"] = list(self.environment.lattice_size)
        del data["algo"], data["algo_settings"]
        if not self.presets:
            del data["presets"]
        if self.handoff is None:
            del data["handoff"]
        if self.algo != DEFAULT_ALGO:
            del data["ppo"]
            data["algo"], data[self.algo] = self.algo, dict(self.algo_settings)
        return data


# --- YAML reading ---------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that reads ``3e-4`` as a float (YAML 1.1 wants ``3.0e-4``) and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Copy the resolver table before adding to it so that yaml.SafeLoader itself is left unchanged.
_StrictLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(value: Any, annotation: Any, key: str, where: str) -> Any:
    """Check ``value`` against a field annotation (dataclass, int, float, tuple[int, ...], X | None)."""
    optional = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(optional) == 1:
        annotation = optional[0]  # a present key must hold a value of the type
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _build(annotation, value, key, where)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key}: expected a string, got {_describe(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key}: expected an integer, got {_describe(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key}: expected a finite number, got {_describe(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float's range, e.g. 10**400 (which still compares < inf)
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{where}: {key}: expected a finite number, got {_describe(value)}")
        return number
    if typing.get_origin(annotation) is tuple:
        item_types = typing.get_args(annotation)
        if not isinstance(value, list) or len(value) != len(item_types):
            raise ConfigError(f"{where}: {key}: expected a list of {len(item_types)} integers, got {_describe(value)}")
        pairs = enumerate(zip(value, item_types, strict=False))
        return tuple(_convert(item, item_type, f"{key}[{i}]", where) for i, (item, item_type) in pairs)
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # a schema bug, not user input


def _build(cls: type, data: Any, prefix: str, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown and missing keys."""
    section = prefix or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {section}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("from_file", True)}
    for key in data:
        if key not in fields:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{where}: unknown key '{dotted}' (expected one of: {', '.join(fields)})")
    values = {}
    for name, spec in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name not in data:
            if spec.default is not dataclasses.MISSING:
                continue  # an optional section (the caller checks when it is required)
            raise ConfigError(f"{where}: missing key '{dotted}'")
        value = _convert(data[name], hints[name], dotted, where)
        check: Check | None = spec.metadata.get("check")
        if check is not None and not check[0](value):
            raise ConfigError(f"{where}: {dotted}: expected {check[1]}, got {data[name]!r}")
        values[name] = value
    return cls(**values)


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base`` (mappings merge, other values replace)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def preset_overrides(overrides: dict[str, Any], algo: str) -> dict[str, Any]:
    """A preset's overrides for a stage training ``algo``: its ``ppo:`` part applies to PPO stages only."""
    return overrides if algo == DEFAULT_ALGO else {key: value for key, value in overrides.items() if key != "ppo"}


def stage_config_from_dict(data: Any, where: str = "<dict>") -> StageConfig:
    """Validate a parsed stage file (nested dict) and return its :class:`StageConfig`.

    The optional ``presets:`` section maps a preset name to overrides in the same layout; each
    preset is checked here by applying it, so a bad one fails when the file is read.

    :param where: name of the source used in error messages (usually the file path).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level: expected a mapping, got {_describe(data)}")
    data = dict(data)
    presets = data.pop("presets", {})
    if not isinstance(presets, dict) or not all(isinstance(v, dict) and "presets" not in v for v in presets.values()):
        raise ConfigError(f"{where}: presets: expected a mapping of preset name -> mapping of overrides")
    config = _stage_config_without_presets(dict(data), where)
    check_agents_fit(config.environment, where)
    for name, overrides in presets.items():
        stage_config_from_dict(merge(data, preset_overrides(overrides, config.algo)), f"{where}: presets.{name}")
    return dataclasses.replace(config, presets={str(name): dict(overrides) for name, overrides in presets.items()})


def check_agents_fit(environment: EnvironmentConfig, where: str) -> None:
    """Refuse a lattice with fewer columns than agents when the file is read, not when the env is built."""
    nx, ny, _ = environment.lattice_size
    if environment.agents.n_swarm > nx * ny:
        raise ConfigError(
            f"{where}: environment.agents.n_swarm: expected at most nx * ny = {nx * ny} agents (one per column), "
            f"got {environment.agents.n_swarm}"
        )


def _stage_config_without_presets(data: dict[str, Any], where: str) -> StageConfig:
    algo = data.pop("algo", DEFAULT_ALGO)
    if not isinstance(algo, str):
        raise ConfigError(f"{where}: algo: expected an algorithm name, got {_describe(algo)}")
    if algo == DEFAULT_ALGO:
        if "ppo" not in data:
            raise ConfigError(f"{where}: missing key 'ppo'")
        return _build(StageConfig, data, "", where)
    if "ppo" in data:
        raise ConfigError(f"{where}: ppo: this stage trains {algo}; its settings go under '{algo}:', not 'ppo:'")
    if algo not in data:
        raise ConfigError(f"{where}: missing key '{algo}' (the settings of algo: {algo})")
    try:
        settings = check_algorithm_section(algo, data.pop(algo), where)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return dataclasses.replace(_build(StageConfig, data, "", where), algo=algo, algo_settings=settings)


def load_stage_config(path: str | Path) -> StageConfig:
    """Read and validate one stage file.

    :raises ConfigError: one line naming the file and the key at fault.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: stage file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read stage file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {error.start}: {error.reason})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"{path}: invalid YAML{line}: {problem}") from None
    return stage_config_from_dict(data, str(path))


def stage_file(stage: int | str | os.PathLike[str]) -> Path:
    """The stage file ``stage`` names: a stage number (1, 2 or 3) names the file shipped with the
    package (in :data:`DEFAULT_CONFIG_DIR`), a string or path names a stage file of your own.

    :raises ConfigError: one line, for anything else (``True``, ``4``, ``None``, ...).
    """
    if isinstance(stage, int) and not isinstance(stage, bool) and stage in STAGE_FILES:
        return DEFAULT_CONFIG_DIR / STAGE_FILES[stage]
    if isinstance(stage, (str, os.PathLike)) and str(stage):
        return Path(stage)
    numbers = ", ".join(map(str, sorted(STAGE_FILES)))
    raise ConfigError(f"stage: expected a stage number ({numbers}) or the path of a stage file, got {stage!r}")


def load_stage_configs(config_dir: str | Path, stages: list[int] | None = None) -> dict[int, StageConfig]:
    """Load the stage files of ``stages`` (default all three) from ``config_dir``."""
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError(f"{config_dir}: config folder not found")
    configs = {stage: load_stage_config(config_dir / STAGE_FILES[stage]) for stage in (stages or sorted(STAGE_FILES))}
    check_chain(configs, config_dir)
    return configs


def _view(config: StageConfig) -> dict[str, Any]:
    """The stage-file keys that fix the shape of a policy's input."""
    env = config.environment
    view: dict[str, Any] = {"environment.agents.mode": env.agents.mode, "environment.patch_radius": env.patch_radius}
    if not env.per_column:
        view["environment.agents.n_swarm"] = env.agents.n_swarm
    return view


def check_chain(configs: dict[int, StageConfig], config_dir: str | Path) -> None:
    """Stage N+1 starts from stage N's weights: their policies must read the same input.

    :raises ConfigError: naming the later stage's file and the first key that differs.
    """
    stages = sorted(configs)
    for before, after in itertools.pairwise(stages):
        old, new = _view(configs[before]), _view(configs[after])
        for key in new:
            if old.get(key) != new[key]:
                raise ConfigError(
                    f"{Path(config_dir) / STAGE_FILES[after]}: {key}: expected {old.get(key)!r} as in "
                    f"{STAGE_FILES[before]} (stage {after} starts from stage {before}'s policy), got {new[key]!r}"
                )


__all__ = [
    "DEFAULT_CONFIG_DIR",
    "STAGE_FILES",
    "AgentsConfig",
    "ConfigError",
    "EnvironmentConfig",
    "HandoffConfig",
    "LocalRewardConfig",
    "PPOConfig",
    "RewardWeights",
    "StageConfig",
    "check_chain",
    "load_stage_config",
    "load_stage_configs",
    "merge",
    "preset_overrides",
    "stage_config_from_dict",
    "stage_file",
]
