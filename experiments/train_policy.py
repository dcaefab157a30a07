"""Train the lattice-growth curriculum: ``python experiments/train_policy.py --stage all``.

A thin wrapper: the logic lives in :mod:`sb3_ext.curriculum` (see ``--help``).
"""

import sys
from pathlib import Path

# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sb3_ext.curriculum.cli import main

if __name__ == "__main__":
    sys.exit(main())
