"""Test-suite wide settings. At the repository root so they also apply to the solution notebooks nbval runs:
strict exercise checks: a failing check in a solution notebook raises CheckFailed and fails CI."""

import os

os.environ["TRTLAB_STRICT_CHECKS"] = "1"
