"""Test-suite wide settings. At the repository root so they also apply to the solution notebooks nbval runs:
strict exercise checks (a failing check fails CI) and a non-interactive matplotlib backend."""

import os

os.environ["TRTLAB_STRICT_CHECKS"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
