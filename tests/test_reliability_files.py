"""Files the package writes and datasets it reads: the atomic writer's permissions and leftovers,
chunk paths confined to their dataset, malformed manifests refused in one line."""

import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sb3_ext.common.atomic import (
    atomic_open,
    atomic_write_json,
    ensure_writable_folder,
    remove_temporaries,
    sha256_file,
)
from sb3_ext.data import iter_chunks, read_manifest

from test_offline_chunks import random_transitions, write_dataset


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_atomic_writer_follows_the_umask(tmp_path, umask_022):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_atomic_writer_exclusive_never_replaces_and_leaves_no_temporary(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"n": 1}, exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write_json(tmp_path / "r.json", {"n": 2}, exclusive=True)
    assert json.loads((tmp_path / "r.json").read_text()) == {"n": 1}
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "r.json") as handle:
        handle.write("half")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_runs_sharing_a_log_folder_check_it_at_the_same_time(tmp_path):
    # Parallel zoo jobs start in one ``logs`` folder; a shared probe name let one job remove the
    # other's probe, and the second job refused a writable folder.
    def check_many(_: int) -> None:
        for _ in range(200):
            ensure_writable_folder(tmp_path / "logs")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(check_many, range(4)))
    assert list((tmp_path / "logs").iterdir()) == []


def test_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / "stage1" / "checkpoints").mkdir(parents=True)
    leftovers = [tmp_path / ".run_state.json.123.abc.tmp", tmp_path / "stage1" / "checkpoints" / ".latest.zip.9.ff.tmp"]
    kept = [tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / "stage1" / "checkpoints" / "latest.zip"]
    for path in leftovers + kept:
        path.write_text("x")
    assert sorted(remove_temporaries(tmp_path)) == sorted(leftovers)
    assert all(path.exists() for path in kept) and not any(path.exists() for path in leftovers)


def _dataset(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(50))
    return tmp_path / "v1", json.loads((tmp_path / "v1" / "manifest.json").read_text())


def _rewrite(directory, manifest):
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_a_chunk_outside_the_dataset_folder_is_refused(tmp_path):
    directory, manifest = _dataset(tmp_path)
    other = tmp_path / "other" / "chunks"
    other.mkdir(parents=True)
    shutil.copy(directory / "chunks" / "chunk_00000.npz", other / "chunk_00000.npz")
    manifest["chunks"][0]["file"] = "../other/chunks/chunk_00000.npz"  # with that file's real sha256
    _rewrite(directory, manifest)
    with pytest.raises(
        ValueError, match=r"chunks\[0\]\.file: '\.\./other/chunks/chunk_00000\.npz' is not inside the dataset folder"
    ):
        list(iter_chunks(directory))
    manifest["chunks"][0]["file"] = "/etc/passwd"
    _rewrite(directory, manifest)
    with pytest.raises(ValueError, match=r"chunks\[0\]\.file: '/etc/passwd' is not inside"):
        read_manifest(directory)
    # a symbolic link inside the folder that points out of it
    manifest["chunks"][0]["file"] = "chunks/link.npz"
    manifest["chunks"][0]["sha256"] = sha256_file(other / "chunk_00000.npz")
    (directory / "chunks" / "link.npz").symlink_to(other / "chunk_00000.npz")
    _rewrite(directory, manifest)
    with pytest.raises(ValueError, match="chunk file is outside its dataset folder"):
        list(iter_chunks(directory))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["chunks"][0].pop("file"), r"chunks\[0\]\.file: expected a relative file name, got None"),
        (lambda m: m.update(chunks={"file": "x"}), "chunks: expected a list, got dict"),
        (lambda m: m["chunks"][1].update(sha256=None), r"chunks\[1\]\.sha256: expected 64 lowercase hex digits, got None"),
        (lambda m: m["chunks"][0].update(n_transitions="40"), r"chunks\[0\]\.n_transitions: expected an integer >= 0"),
        (
            lambda m: m["observation_space"].update(shape=[1 << 20, 1 << 20]),
            r"observation_space\.shape: \[1048576, 1048576\] asks for",
        ),
        (lambda m: m["observation_space"].update(dtype="float128x"), r"observation_space\.dtype: expected a numeric dtype"),
        (lambda m: m["action_space"].update(low=[1, 2]), r"action_space\.low: 2 values for shape \[1\]"),
        (lambda m: m.update(action_space=[]), r"action_space: expected a mapping with a 'type'"),
        (lambda m: m.update(n_envs=0), "n_envs: expected an integer >= 1, got 0"),
        (lambda m: m.update(format_version=True), "format_version: expected a positive integer, got True"),
    ],
)
def test_malformed_manifest_is_one_value_error_naming_the_field(tmp_path, change, message):
    directory, manifest = _dataset(tmp_path)
    change(manifest)
    _rewrite(directory, manifest)
    with pytest.raises(ValueError, match=message) as caught:
        read_manifest(directory)
    assert type(caught.value) is ValueError
    assert str(caught.value).startswith(f"{directory / 'manifest.json'}: ") and "\n" not in str(caught.value)


def test_deeply_nested_manifest_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not a readable JSON manifest"):
        read_manifest(tmp_path)


def test_a_valid_manifest_still_loads(tmp_path):
    directory, _ = _dataset(tmp_path)
    chunks = list(iter_chunks(directory))
    assert sum(len(chunk["rewards"]) for chunk in chunks) == 50
    assert np.all(np.isfinite(chunks[0]["observations"]))
