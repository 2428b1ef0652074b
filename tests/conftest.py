"""Test-suite wide settings: strict exercise checks (a failing check in a solution notebook fails CI) and a
non-interactive matplotlib backend."""

import os

os.environ["TRTLAB_STRICT_CHECKS"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
