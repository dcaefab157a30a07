"""``run_state.json``: what a curriculum run was asked to do and how far it got.

It is rewritten (atomically) at every stage boundary and when a run is interrupted, and it is
what ``--resume-from`` reads to continue a run with its recorded settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_ext.common.atomic import atomic_write_json
from sb3_ext.curriculum.config import ConfigError, StageConfig, stage_config_from_dict

STATE_NAME = "run_state.json"


@dataclass
class StageRecord:
    """Progress of one stage.

    :param status: ``pending``, ``running``, ``interrupted``, ``failed`` (``learn()`` raised),
        ``done``, or ``superseded`` (built on an earlier stage's model that a resume replaced).
    :param start_timesteps: the model's ``num_timesteps`` when the stage began.
    :param end_timesteps: ``num_timesteps`` when it last stopped.
    :param wall_time: seconds spent on it (environments, training, evaluations), summed over sessions.
    :param train_time: seconds inside ``learn()``, summed over sessions.
    :param stop_reason: why it ended before its budget (ESS early stop), if it did.
    :param result: final evaluation (policy and neutral) once done.
    :param rescue: where the model was saved when the stage failed.
    """

    status: str = "pending"
    start_timesteps: int | None = None
    end_timesteps: int | None = None
    wall_time: float = 0.0
    train_time: float = 0.0
    stop_reason: str | None = None
    result: dict[str, Any] | None = None
    rescue: str | None = None


@dataclass
class RunState:
    """A curriculum run: its folder, settings and per-stage progress."""

    run_dir: Path
    seed: int
    preset: str | None
    configs: dict[int, StageConfig]
    records: dict[int, StageRecord] = field(default_factory=dict)

    def stage_dir(self, stage: int) -> Path:
        """Folder of ``stage`` inside the run."""
        return self.run_dir / f"stage{stage}"

    def final_model(self, stage: int) -> Path:
        """Path of ``stage``'s final model."""
        return self.stage_dir(stage) / f"stage{stage}_final.zip"

    def record(self, stage: int) -> StageRecord:
        """The stage's record, created on first use."""
        return self.records.setdefault(stage, StageRecord())

    def save(self) -> None:
        """Write run_state.json atomically."""
        atomic_write_json(
            self.run_dir / STATE_NAME,
            {
                "seed": self.seed,
                "preset": self.preset,
                "configs": {str(stage): config.to_dict() for stage, config in self.configs.items()},
                "stages": {str(stage): dataclasses.asdict(record) for stage, record in sorted(self.records.items())},
            },
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> RunState:
        """Read ``run_dir/run_state.json``."""
        path = Path(run_dir) / STATE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            configs = {
                int(stage): stage_config_from_dict(config, f"{path} (stage {stage})")
                for stage, config in data["configs"].items()
            }
            records = {int(stage): StageRecord(**record) for stage, record in data["stages"].items()}
            return cls(Path(run_dir), int(data["seed"]), data["preset"], configs, records)
        except FileNotFoundError:
            raise ConfigError(f"{path}: run state not found") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"{path}: unreadable run state ({type(error).__name__}: {error})") from None

    @staticmethod
    def find_run_dir(path: str | Path) -> Path | None:
        """The nearest folder above ``path`` that holds a run_state.json, if any."""
        for parent in Path(path).resolve().parents:
            if (parent / STATE_NAME).is_file():
                return parent
        return None
