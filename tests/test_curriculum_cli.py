"""sb3-ext-curriculum (through experiments/train_policy.py): user errors are one line on stderr with a non-zero exit."""

import subprocess
import sys
from pathlib import Path

from sb3_ext.curriculum.cli import main
from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR

REPO = Path(__file__).resolve().parent.parent
CONFIGS = DEFAULT_CONFIG_DIR


def test_cli_reports_a_bad_stage_file_in_one_line(tmp_path, capsys):
    for stage_file in CONFIGS.glob("*.yaml"):
        (tmp_path / stage_file.name).write_text(stage_file.read_text())
    bad = tmp_path / "stage2_medium.yaml"
    bad.write_text(bad.read_text().replace("  clip_range: 0.2", "  clip_rnage: 0.2"))
    assert main(["--config-dir", str(tmp_path), "--output", str(tmp_path / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{bad}: unknown key 'ppo.clip_rnage'" in err
    assert not (tmp_path / "runs").exists()  # nothing is created before the configs are valid


def test_cli_process_exits_nonzero_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "train_policy.py"), "--config-dir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"sb3-ext-curriculum: error: {tmp_path / 'nowhere'}: config folder not found"
    assert "Traceback" not in result.stderr
