"""``run_manifest.json``: an audit trail of a training folder, and :func:`verify` to check it later.

Not to be confused with an offline dataset's ``manifest.json`` (:mod:`sb3_ext.data.format`), which
indexes the dataset's chunks. The run manifest records the configuration, the seed, the command line,
the versions of the packages that produced the results, and the sha256 and size of every file under the folder. ``verify``
re-hashes the files and lists every difference, so a result can be traced to exactly the files
(and settings) that produced it. ``python -m sb3_ext.callbacks.manifest MANIFEST...`` runs it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext.common.atomic import atomic_write_json, is_temporary, sha256_file

#: File name of a run manifest (earlier versions wrote ``manifest.json``; ``verify`` reads either).
RUN_MANIFEST_NAME = "run_manifest.json"

#: Distributions whose versions are recorded (those not installed are reported as such).
RECORDED_PACKAGES = ("stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy", "numba", "rl-zoo3")


def package_versions() -> dict[str, str]:
    """Python, sb3-ext and the recorded dependencies' versions."""
    import sb3_ext  # late import: sb3_ext imports this module lazily

    versions = {"python": platform.python_version(), "sb3-ext": sb3_ext.__version__}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hash_tree(directory: str | Path, skip: Path | None = None) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``directory`` (relative POSIX paths, sorted)."""
    directory = Path(directory)
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path == skip or is_temporary(path):
            continue
        files[path.relative_to(directory).as_posix()] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return files


def write_manifest(
    directory: str | Path,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
    command: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Hash every file under ``directory`` and write ``directory/run_manifest.json`` atomically.

    :param config: the configuration that produced the files.
    :param seed: the random seed.
    :param command: the command line; defaults to this process's ``sys.argv``.
    :param extra: further JSON-serialisable entries (e.g. the stage number).
    :return: path of the manifest.
    """
    directory = Path(directory)
    path = directory / RUN_MANIFEST_NAME
    manifest = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join([sys.executable, *sys.argv]),
        "seed": seed,
        "config": config,
        "versions": package_versions(),
        **(extra or {}),
        "files": hash_tree(directory, skip=path),
    }
    atomic_write_json(path, manifest)
    return path


def verify(manifest_path: str | Path) -> list[str]:
    """Re-hash the files a manifest lists; return one line per problem (empty list: all match).

    Files added to the folder after the manifest was written are not problems; files missing,
    resized or changed are.
    """
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except FileNotFoundError:
        return [f"{manifest_path}: manifest not found"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return [f"{manifest_path}: not a manifest (unreadable JSON or no 'files' entry)"]
    root = manifest_path.parent
    problems = []
    for name, expected in files.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{name}: size {path.stat().st_size} != {expected['size']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name}: sha256 differs")
    return problems


class ManifestExport(BaseCallback):
    """Write ``run_manifest.json`` for ``directory`` when training ends.

    Place it last in a callback list so that the files other callbacks write at training end
    (latest.zip, metrics, curves) are included. From an rl-zoo3 YAML::

        callback:
          - sb3_ext.callbacks.ManifestExport:
              directory: logs/artifacts
              seed: 0

    :param directory: folder to hash.
    :param config: configuration recorded in the manifest (defaults to the model's
        hyperparameters as SB3 would save them).
    :param seed: random seed recorded (defaults to the model's ``seed``).
    """

    def __init__(self, directory: str, config: dict[str, Any] | None = None, seed: int | None = None, verbose: int = 0):
        super().__init__(verbose=verbose)
        self.directory = Path(directory)
        self.config = config
        self.seed = seed
        self.manifest_path: Path | None = None

    def _model_config(self) -> dict[str, Any]:
        names: tuple[str, ...] = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef")
        names += ("vf_coef", "max_grad_norm")
        config: dict[str, Any] = {"algorithm": type(self.model).__name__}
        for name in names:
            value = getattr(self.model, name, None)
            if isinstance(value, (int, float)):
                config[name] = value
        return config

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manifest_path = write_manifest(
            self.directory,
            config=self.config if self.config is not None else self._model_config(),
            seed=self.seed if self.seed is not None else self.model.seed,
            extra={"num_timesteps": self.model.num_timesteps},
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m sb3_ext.callbacks.manifest MANIFEST...``: verify each manifest; exit 1 on any problem."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m sb3_ext.callbacks.manifest MANIFEST [MANIFEST...]", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        problems = verify(path)
        failed = failed or bool(problems)
        print(f"{path}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
