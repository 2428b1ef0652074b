"""CI executes only the Chinese Lab 00 (issue 16): the other Chinese solution notebooks run the same code cells as
their English sources, which CI already executes, so collecting them would double CI time for no new coverage.
Kept in step with tests/test_i18n.py (CI_TRANSLATED_NOTEBOOKS)."""

collect_ignore_glob = ["0[1-9]_*.ipynb"]
