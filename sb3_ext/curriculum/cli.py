"""Command line of the lattice curriculum (``sb3-ext-curriculum``, or ``experiments/train_policy.py``)."""

from __future__ import annotations

import argparse
import datetime
import itertools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sb3_ext.common.atomic import atomic_write_json, ensure_writable_folder
from sb3_ext.common.options_file import parse_with_options_file
from sb3_ext.common.rescue import TrainingFailed
from sb3_ext.curriculum.config import (
    DEFAULT_CONFIG_DIR,
    STAGE_FILES,
    ConfigError,
    StageConfig,
    load_stage_configs,
)
from sb3_ext.curriculum.presets import apply_preset_to_stages, override
from sb3_ext.curriculum.state import RunState

if TYPE_CHECKING:
    from sb3_ext.curriculum.runner import CurriculumRunner

# torch, SB3 and the runner are imported inside the commands, after the arguments and stage
# files have been checked: a typo is then reported at once, not after seconds of imports.

PROG = "sb3-ext-curriculum"
DEFAULT_OUTPUT = "experiments/training_runs"
#: Flags that define a run's settings; a resumed run keeps its recorded ones.
RUN_SETTING_FLAGS = ("config_dir", "preset", "n_envs", "seed", "output")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``sb3-ext-curriculum`` argument parser."""
    parser = _OneLineParser(
        prog=PROG,
        description="Train the three-stage PPO curriculum on LatticeGrowth-v0 (8x8x5 -> 20x20x10 -> 50x50x20).",
    )
    parser.add_argument(
        "--stage",
        choices=["1", "2", "3", "all"],
        help="stage to train (default all); with --resume-from, the last stage to train",
    )
    parser.add_argument("--config-dir", type=Path, help="folder with stage1_small.yaml, stage2_medium.yaml, stage3_large.yaml")
    parser.add_argument("--output", type=Path, help=f"parent folder of the run folders (default {DEFAULT_OUTPUT})")
    parser.add_argument("--seed", type=_non_negative, help="random seed (default 0)")
    parser.add_argument("--resume-from", type=Path, metavar="ZIP", help="continue the run this checkpoint belongs to")
    parser.add_argument(
        "--eval-only", action="store_true", help="evaluate --checkpoint next to neutral physics and the hand rule, no training"
    )
    parser.add_argument("--checkpoint", type=Path, metavar="ZIP", help="model to evaluate with --eval-only")
    parser.add_argument(
        "--lattice", type=int, nargs=3, metavar=("NX", "NY", "NZ"),
        help="--eval-only on this lattice instead of the stage's (events per step scaled with the area)",
    )  # fmt: skip
    parser.add_argument(
        "--temperature", type=float, metavar="K", help="--eval-only at this temperature instead of the stage's"
    )
    parser.add_argument("--eval-episodes", type=_positive, default=5, help="deterministic episodes per evaluation (default 5)")
    parser.add_argument(
        "--preset",
        metavar="NAME",
        help="a preset of the stage files (their presets: section); 'quick' runs all stages in minutes",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu: the networks are small MLPs)")
    parser.add_argument("--n-envs", type=int, help="override every stage's n_envs")
    parser.add_argument(
        "--vec-env",
        choices=["subproc", "dummy"],
        default="subproc",
        help="SubprocVecEnv workers (default) or DummyVecEnv in one process (often faster: a step costs ~30 us)",
    )
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show SB3's progress bar")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="YAML file of these options (eval_freq: 5000, ...); flags given here win"
    )
    parser.add_argument(
        "--eval-freq", type=_positive, metavar="STEPS", help="environment steps between evaluations (default: 10 per stage)"
    )
    parser.add_argument(
        "--checkpoint-freq",
        type=_positive,
        metavar="STEPS",
        help="environment steps between checkpoints (default: 4 per stage)",
    )
    parser.add_argument(
        "--early-stopping",
        type=_positive,
        metavar="EVALS",
        help="end a stage when more than EVALS evaluations in a row bring no better mean reward",
    )
    parser.add_argument(
        "--track", action="store_true", help="mirror the run into Weights & Biases (offline; needs the [track] extra)"
    )
    parser.add_argument("--wandb-project", default="sb3-ext-curriculum", help="W&B project name with --track")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _check_device(device: str) -> None:
    import torch

    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {device}: not a torch device (expected cpu, cuda, cuda:N, mps or auto)") from None


def _check_environments(configs: dict[int, StageConfig], stages: list[int]) -> None:
    """Build each stage's environment once, so that a value it refuses is reported before any run folder exists."""
    import gymnasium as gym

    import sb3_ext  # noqa: F401 - registers LatticeGrowth-v0 and LatticeSwarm-v0

    for stage in stages:
        environment = configs[stage].environment
        try:
            gym.make(environment.env_id, **environment.env_kwargs()).close()
        except ValueError as error:
            raise ConfigError(f"stage {stage} ({STAGE_FILES[stage]}): environment: {error}") from None


def _writable_folder(folder: Path, flag: str) -> Path:
    """Create ``folder`` and check that a file can be written in it, before any work is done."""
    try:
        ensure_writable_folder(folder)
    except OSError as error:
        raise ConfigError(f"{flag} {folder}: cannot write there ({error.strerror or error})") from None
    return folder


def _previous_final(output: Path, stage: int) -> Path | None:
    """The newest run under ``output`` whose stage ``stage`` is done, as its final model's path."""
    runs = (
        sorted(output.glob("run_*/run_state.json"), key=lambda path: path.stat().st_mtime, reverse=True)
        if output.is_dir()
        else []
    )
    for state_file in runs:
        try:
            state = RunState.load(state_file.parent)
        except ConfigError:
            continue
        record = state.records.get(stage)
        if record is not None and record.status == "done" and state.final_model(stage).is_file():
            return state.final_model(stage)
    return None


def _configs(args: argparse.Namespace, default_config_dir: Path) -> dict[int, StageConfig]:
    configs = load_stage_configs(args.config_dir or default_config_dir)
    if args.preset:
        configs = apply_preset_to_stages(args.preset, configs)
    if args.n_envs is not None:
        configs = {stage: override(config, {"n_envs": args.n_envs}, "--n-envs") for stage, config in configs.items()}
    return configs


def _use_one_torch_thread() -> None:
    import torch

    # The policies are small MLPs: one thread is fastest, and leaves the cores to the environments.
    torch.set_num_threads(1)


def _runner(args: argparse.Namespace, state: RunState) -> CurriculumRunner:
    from sb3_ext.curriculum.runner import CurriculumRunner

    return CurriculumRunner(
        state,
        device=args.device,
        progress=args.progress,
        eval_episodes=args.eval_episodes,
        subprocesses=args.vec_env == "subproc",
        eval_freq=args.eval_freq,
        checkpoint_freq=args.checkpoint_freq,
        patience=args.early_stopping,
    )


def _run_tracked(args: argparse.Namespace, runner: CurriculumRunner, stages: list[int], **kwargs: Any) -> int:
    """``runner.run``, inside a W&B run (TensorBoard mirrored, offline) with ``--track``."""
    if not args.track:
        return runner.run(stages, **kwargs)
    from sb3_ext.common.tracking import start_tracking

    state = runner.state
    run = start_tracking(
        state.run_dir,
        args.wandb_project,
        name=state.run_dir.name,
        config={
            "seed": state.seed,
            "preset": state.preset,
            "stages": stages,
            **{f"stage{stage}": config.to_dict() for stage, config in state.configs.items()},
        },
    )
    try:
        return runner.run(stages, **kwargs)
    finally:
        run.finish()


def _train(args: argparse.Namespace, default_config_dir: Path) -> int:
    stages = [1, 2, 3] if args.stage in (None, "all") else [int(args.stage)]
    output = Path(args.output or DEFAULT_OUTPUT)
    if stages[0] > 1:
        # A later stage continues the chain from the previous stage's final model.
        previous = _previous_final(output, stages[0] - 1)
        command = (
            f"{PROG} --resume-from {previous} --stage {stages[0]}"
            if previous is not None
            else f"{PROG} --stage all (stage {stages[0]} starts from stage {stages[0] - 1}'s final model; {output} has none)"
        )
        raise ConfigError(f"--stage {stages[0]} alone would train from scratch; to continue the curriculum run: {command}")
    configs = _configs(args, default_config_dir)
    _check_device(args.device)
    _check_environments(configs, stages)
    _use_one_torch_thread()
    from sb3_ext.curriculum.runner import new_run_dir

    try:
        run_dir = new_run_dir(_writable_folder(output, "--output"))
    except OSError as error:
        raise ConfigError(f"--output {output}: cannot create a run folder there ({error.strerror or error})") from None
    state = RunState(run_dir, args.seed if args.seed is not None else 0, args.preset, configs)
    print(f"run folder: {run_dir}")
    return _run_tracked(args, _runner(args, state), stages)


def _resume(args: argparse.Namespace) -> int:
    given = [f"--{name.replace('_', '-')}" for name in RUN_SETTING_FLAGS if getattr(args, name) is not None]
    if given:
        raise ConfigError(f"--resume-from continues the run with its recorded settings; drop {', '.join(given)}")
    _use_one_torch_thread()
    from sb3_ext.curriculum.runner import check_model_file, stage_of

    checkpoint = check_model_file(args.resume_from, "--resume-from")
    run_dir = RunState.find_run_dir(checkpoint)
    if run_dir is None:
        raise ConfigError(f"--resume-from {checkpoint}: not inside a curriculum run folder (no run_state.json above it)")
    _check_device(args.device)
    state = RunState.load(run_dir)
    stage = stage_of(checkpoint, run_dir)
    is_final = checkpoint.resolve() == state.final_model(stage).resolve()
    status = state.record(stage).status
    if status == "superseded":
        earlier = max((s for s, r in state.records.items() if s < stage and r.status == "done"), default=1)
        raise ConfigError(
            f"--resume-from {checkpoint}: stage {stage} was built on a stage-{stage - 1} model that a later resume replaced; "
            f"continue from {state.final_model(earlier)}"
        )
    if is_final and status != "done":
        raise ConfigError(
            f"--resume-from {checkpoint}: stage {stage} is {status}, so this final model is not its result; "
            f"resume from {state.stage_dir(stage) / 'checkpoints' / 'latest.zip'}"
        )
    first = stage + 1 if is_final else stage
    last = 3 if args.stage in (None, "all") else int(args.stage)
    if first > last:
        raise ConfigError(
            f"--resume-from {checkpoint}: nothing to train up to stage {last} "
            f"(this is stage {stage}'s {'final model' if is_final else 'checkpoint'})"
        )
    print(
        f"resuming run {run_dir}: stage {stage} "
        f"{'done, continuing with' if is_final else 'from a mid-stage checkpoint, then'} stages {first}-{last}"
    )
    return _run_tracked(
        args, _runner(args, state), list(range(first, last + 1)), init_model=checkpoint, resume_stage=not is_final
    )


def _eval_only(args: argparse.Namespace, default_config_dir: Path) -> int:
    from sb3_ext.curriculum.envs import config_for_checkpoint, evaluation_config
    from sb3_ext.curriculum.runner import check_model_file, load_model_file, stage_of

    if args.checkpoint is None:
        raise ConfigError("--eval-only needs --checkpoint ZIP")
    checkpoint = check_model_file(args.checkpoint, "--checkpoint")
    run_dir = RunState.find_run_dir(checkpoint)
    if args.stage not in (None, "all"):
        stage = int(args.stage)
    elif run_dir is not None:
        stage = stage_of(checkpoint, run_dir)
    else:
        raise ConfigError("--eval-only: say which lattice with --stage 1|2|3 (the checkpoint is not inside a run folder)")
    if run_dir is not None and args.config_dir is None and args.preset is None:
        config, source = RunState.load(run_dir).configs[stage], f"{run_dir / 'run_state.json'}"
    else:
        source = str((args.config_dir or default_config_dir) / STAGE_FILES[stage])
        config = _configs(args, default_config_dir)[stage]
    config = evaluation_config(config, args.lattice, args.temperature)
    config = config_for_checkpoint(checkpoint, config, source)
    _check_device(args.device)
    output = _writable_folder(Path(args.output or DEFAULT_OUTPUT), "--output")  # before minutes of evaluation
    _use_one_torch_thread()
    from sb3_ext.curriculum.algorithms import algorithm_class, algorithm_of_saved_model
    from sb3_ext.curriculum.evaluation import compare, format_comparison

    # The zip says which algorithm saved it (the stage file's algo breaks ties): a TD3 checkpoint
    # evaluated against the PPO stage files of the package loads as TD3.
    algo = algorithm_of_saved_model(checkpoint, preferred=config.algo)
    model = load_model_file(algorithm_class(algo, str(checkpoint)), checkpoint, "--checkpoint", device=args.device)
    seed = args.seed if args.seed is not None else 0
    result = compare(model, config, args.eval_episodes, seed=seed)
    lattice = "x".join(map(str, config.environment.lattice_size))
    print(
        f"{checkpoint} ({algo}) on stage {stage}'s settings ({lattice} at {config.environment.temperature:g} K, "
        f"agents {config.environment.agents.mode}, config from {source}), "
        f"{args.eval_episodes} deterministic episodes, seed {seed}; W at the neutral films' final height"
    )
    print(format_comparison(result))
    report = {"checkpoint": str(checkpoint), "algo": algo, "stage": stage, "config": config.to_dict(), "seed": seed, **result}
    base = f"eval_stage{stage}_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for n in itertools.count(1):  # never replace another session's result written in the same second
        path = output / (f"{base}.json" if n == 1 else f"{base}_{n}.json")
        try:
            atomic_write_json(path, report, exclusive=True)
            break
        except FileExistsError:
            continue
    print(f"written: {path}")
    return 0


def main(argv: list[str] | None = None, default_config_dir: Path | None = None) -> int:
    """Parse ``argv`` and run; returns the exit status (user errors: one line on stderr, status 2).

    :param default_config_dir: stage-file folder used when ``--config-dir`` is not given
        (default: the stage files shipped in the package, :data:`DEFAULT_CONFIG_DIR`).
    """
    args = parse_with_options_file(build_parser(), argv)
    default_config_dir = default_config_dir or DEFAULT_CONFIG_DIR
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    package_logger = logging.getLogger("sb3_ext")
    package_logger.addHandler(console)
    package_logger.setLevel(logging.INFO)
    try:
        if args.eval_only:
            return _eval_only(args, default_config_dir)
        if args.checkpoint is not None:
            raise ConfigError("--checkpoint is for --eval-only; to continue training use --resume-from")
        if args.lattice is not None or args.temperature is not None:
            raise ConfigError("--lattice and --temperature are for --eval-only; to train on another lattice edit a stage file")
        if args.resume_from is not None:
            return _resume(args)
        return _train(args, default_config_dir)
    except ValueError as error:  # ConfigError and the environment's own argument checks
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except TrainingFailed as error:  # the model was saved; the message says where and how to resume
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk, a folder turned read-only...
        print(f"{PROG}: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: aborted", file=sys.stderr)
        return 130
    finally:
        package_logger.removeHandler(console)
