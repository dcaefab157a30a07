import subprocess
import sys

import gymnasium as gym
import pytest

import sb3_ext


def test_import_registers_environments():
    for env_id in ("LatticeGrowth-v0", "AssistGrid-v0"):
        assert env_id in gym.registry


def test_every_public_name_resolves():
    for name in sb3_ext.__all__:
        assert getattr(sb3_ext, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        sb3_ext.no_such_thing  # noqa: B018


def test_import_is_light():
    """Importing the package must not pull in the algorithms (subprocess workers import it)."""
    code = "import sys, sb3_ext; print(any(m.startswith('sb3_ext.twin_dqn') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
