"""Property-based: whatever a user puts in a stage file, a feedback line or a dataset manifest, the
loaders either load it or raise the package's one-line ValueError; nothing else escapes."""

import copy
import json
import tempfile
import warnings
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb3_ext.curriculum.config import ConfigError, load_stage_config
from sb3_ext.data import iter_chunks, read_manifest
from sb3_ext.rlhf import FileFeedback

from test_curriculum_cli import CONFIGS
from test_offline_chunks import random_transitions, write_dataset
from test_rlhf_feedback import filled_log

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON-like values, including the awkward ones: huge and non-finite numbers, deep nesting.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12
)


def _one_line_value_error(call):
    try:
        call()
    except ValueError as error:
        assert "\n" not in str(error), str(error)
        return error
    return None


def _paths(data):
    """Every (path of keys/indices) into nested dicts and lists."""
    yield ()
    if isinstance(data, dict):
        for key, value in data.items():
            for rest in _paths(value):
                yield (key, *rest)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            for rest in _paths(value):
                yield (index, *rest)


def _mutate(data, choice, value, delete):
    """Replace (or delete) the item at one path of ``data``, chosen by ``choice``."""
    data = copy.deepcopy(data)
    paths = [p for p in _paths(data) if p]
    path = paths[choice % len(paths)]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


STAGE = yaml.safe_load((CONFIGS / "stage1_small.yaml").read_text())


@SETTINGS
@given(choice=st.integers(0, 10**6), value=VALUES, delete=st.booleans(), raw=st.binary(max_size=200), use_raw=st.booleans())
def test_stage_files(choice, value, delete, raw, use_raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stage1_small.yaml"
        if use_raw:
            path.write_bytes(raw)
        else:
            path.write_text(yaml.safe_dump(_mutate(STAGE, choice, value, delete)))
        error = _one_line_value_error(lambda: load_stage_config(path))
        assert error is None or (isinstance(error, ConfigError) and str(error).startswith(str(path)))


def test_an_integer_beyond_float_range_in_a_float_field_is_a_config_error(tmp_path):
    """Found by test_stage_files: 10**400 compares below inf, yet float() of it overflows."""
    path = tmp_path / "stage1_small.yaml"
    data = copy.deepcopy(STAGE)
    data["ppo"]["gae_lambda"] = 10**400
    path.write_text(yaml.safe_dump(data))
    error = _one_line_value_error(lambda: load_stage_config(path))
    assert isinstance(error, ConfigError) and "ppo.gae_lambda: expected a finite number" in str(error)


@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=60),
            VALUES.map(json.dumps),
            st.fixed_dictionaries(
                {
                    "episode": VALUES | st.integers(0, 3),
                    "start": VALUES | st.integers(0, 2),
                    "end": VALUES | st.integers(1, 4),
                    "score": VALUES,
                }
            ).map(json.dumps),
        ),
        max_size=6,
    )
)
def test_feedback_lines(lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feedback.jsonl"
        path.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
        source = FileFeedback(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            source.update(filled_log(6, dones_at={0: [2]}))  # never raises
        assert all("\n" not in str(w.message) for w in caught)
        assert all(abs(rating.score) <= 1e6 for rating in source.ratings)


with tempfile.TemporaryDirectory() as _folder:
    write_dataset(Path(_folder) / "v1", random_transitions(30))
    MANIFEST = json.loads((Path(_folder) / "v1" / "manifest.json").read_text())
    CHUNKS = {p.name: p.read_bytes() for p in (Path(_folder) / "v1" / "chunks").iterdir()}


@SETTINGS
@given(choice=st.integers(0, 10**6), value=VALUES, delete=st.booleans())
def test_dataset_manifests(choice, value, delete):
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "v1"
        (directory / "chunks").mkdir(parents=True)
        for name, data in CHUNKS.items():
            (directory / "chunks" / name).write_bytes(data)
        (directory / "manifest.json").write_text(json.dumps(_mutate(MANIFEST, choice, value, delete)))
        _one_line_value_error(lambda: list(iter_chunks(directory)))
        _one_line_value_error(lambda: read_manifest(directory))
