"""Optuna storages for distributed search: a journal file (one machine / shared FS) or a database.

rl-zoo3 reads ``--storage`` the same way: a path ending in ``.log`` is an Optuna journal file
(``JournalStorage`` + ``JournalFileBackend``, safe for several processes thanks to its lock
file), anything else is an SQLAlchemy URL such as ``postgresql://user:pw@host/db``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from sb3_ext.zoo.config import ZooUsageError

JOURNAL_SUFFIX = ".log"


def check_storage_argument(storage: str) -> None:
    """Fail with one line when ``--storage`` is neither a journal file nor a database URL."""
    if storage.endswith(JOURNAL_SUFFIX):
        return
    try:
        make_url(storage)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ZooUsageError(
            f"--storage {storage!r}: expected a journal file ending in {JOURNAL_SUFFIX!r} "
            "or a database URL such as postgresql://user:password@host/dbname"
        ) from None


def describe_storage(storage: str) -> str:
    """``storage`` fit for logs: database passwords are masked."""
    if storage.endswith(JOURNAL_SUFFIX):
        return storage
    return make_url(storage).render_as_string(hide_password=True)


def open_storage(storage: str) -> str | optuna.storages.BaseStorage:
    """What Optuna's ``create_study``/``load_study`` accept for an rl-zoo3 ``--storage`` value."""
    if storage.endswith(JOURNAL_SUFFIX):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(storage))
    return storage


def join_study(storage: str, study_name: str, attempts: int = 5) -> optuna.Study:
    """Create the study, or load it if another worker did, in a maximising direction.

    Workers that start at the same moment on an empty database all try to create Optuna's tables,
    and all but one fail with an integrity error (optuna/optuna#1092); a short randomised retry
    finds the tables made by the winner. A database that stays unreachable is a user error.
    """
    for _ in range(attempts - 1):
        try:
            return _create_or_load(storage, study_name)
        except sqlalchemy.exc.SQLAlchemyError:
            time.sleep(random.uniform(0.2, 1.0))
    try:
        return _create_or_load(storage, study_name)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise ZooUsageError(f"--storage {describe_storage(storage)}: {_first_line(error)}") from None


def _create_or_load(storage: str, study_name: str) -> optuna.Study:
    return optuna.create_study(
        storage=open_storage(storage), study_name=study_name, direction="maximize", load_if_exists=True
    )


def _first_line(error: Exception) -> str:
    # The driver's own message (e.g. "connection refused") without SQLAlchemy's trailer; an
    # ImportError means the URL names a database driver that is not installed.
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).strip().splitlines()[0]


def load_existing_study(storage: str, study_name: str) -> optuna.Study:
    """Load a study that must exist (for ``--trial-id``), with one clear line when it does not."""
    try:
        return optuna.load_study(storage=open_storage(storage), study_name=study_name)
    except KeyError:
        raise ZooUsageError(f"--study-name {study_name!r}: no such study in {describe_storage(storage)}") from None
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise ZooUsageError(f"--storage {describe_storage(storage)}: {_first_line(error)}") from None
