"""ManifestExport / write_manifest / verify: hashes checked against hashlib, tampering detected."""

import hashlib
import json

from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from curriculum_fakes import FakeLatticeEnv, one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.callbacks import ManifestExport, verify
from sb3_ext.callbacks.manifest import main as verify_main
from sb3_ext.callbacks.manifest import write_manifest


def _folder(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "training.log").write_text("step 1\n")
    (tmp_path / "model.zip").write_bytes(bytes(range(256)) * 10)
    (tmp_path / ".model.zip.abc.tmp").write_bytes(b"leftover of a killed write")
    return tmp_path


def test_manifest_lists_every_file_with_independent_hashes(tmp_path):
    folder = _folder(tmp_path)
    path = write_manifest(folder, config={"lr": 1e-4}, seed=3, command="train --stage 1", extra={"stage": 1})
    manifest = json.loads(path.read_text())
    assert set(manifest["files"]) == {"logs/training.log", "model.zip"}  # not itself, not temporaries
    blob = bytes(range(256)) * 10
    assert manifest["files"]["model.zip"] == {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}
    assert (manifest["seed"], manifest["config"], manifest["command"], manifest["stage"]) == (
        3,
        {"lr": 1e-4},
        "train --stage 1",
        1,
    )
    assert {"python", "sb3-ext", "stable-baselines3", "torch", "gymnasium", "numpy"} <= set(manifest["versions"])
    assert verify(path) == []


def test_verify_reports_changed_resized_and_missing_files(tmp_path, capsys):
    folder = _folder(tmp_path)
    path = write_manifest(folder)
    (folder / "logs" / "training.log").write_text("step 2\n")  # same size, other bytes
    (folder / "model.zip").write_bytes(b"short")
    (folder / "new_file.txt").write_text("added later: not a problem")
    assert verify(path) == ["logs/training.log: sha256 differs", "model.zip: size 5 != 2560"]
    (folder / "model.zip").unlink()
    assert "model.zip: missing" in verify(path)
    assert verify(folder / "nope.json") == [f"{folder / 'nope.json'}: manifest not found"]
    assert verify_main([str(path)]) == 1
    assert "2 problem(s)" in capsys.readouterr().out


def test_callback_writes_the_manifest_when_training_ends(tmp_path):
    model = PPO("MlpPolicy", make_vec_env(FakeLatticeEnv, n_envs=1), n_steps=8, batch_size=8, n_epochs=1, seed=5)
    (tmp_path / "notes.txt").write_text("run notes")
    callback = ManifestExport(str(tmp_path))
    model.learn(8, callback=callback)
    manifest = json.loads(callback.manifest_path.read_text())
    assert manifest["seed"] == 5 and manifest["num_timesteps"] == 8
    assert manifest["config"]["n_steps"] == 8 and manifest["config"]["algorithm"] == "PPO"
    assert list(manifest["files"]) == ["notes.txt"]
    assert verify(callback.manifest_path) == []
