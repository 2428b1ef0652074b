"""Write the GPU section of docs/verified.md from what tools/gpu_verify.sh returned.

    python tools/verified_md.py RESULTS_DIR [RESULTS_DIR ...] > /tmp/gpu-section.md

Each RESULTS_DIR is one call's $OUT (summary.tsv, doctor.txt, versions.txt, logs-*.tar.gz). The table has one row
per part: the verdict pytest printed, its exit code and its wall time; the header names the machine and the date
from doctor.txt. Figures worth quoting are read from the logs by the maintainer, not invented here.
"""

from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path


def _logs(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for archive in sorted(folder.glob("logs-*.tar.gz")):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".log"):
                    texts[Path(member.name).stem] = tar.extractfile(member).read().decode(errors="replace")
    return texts


def _verdict(log: str) -> str:
    """pytest's closing line, e.g. '24 passed, 1 failed in 61.2s', without the ===."""
    for line in reversed(log.splitlines()):
        if re.search(r"\b(passed|failed|error|no tests ran)\b", line):
            return line.strip("= ").strip()
    return "no pytest summary (timed out or crashed)"


def main(folders: list[Path]) -> str:
    rows, machine, date, versions = [], "?", "?", ""
    for folder in folders:
        logs = _logs(folder)
        doctor = folder / "doctor.txt"
        if doctor.exists():
            lines = doctor.read_text().splitlines()
            if len(lines) > 2:
                machine, date = lines[1].strip(), lines[2].strip()
        if (folder / "versions.txt").exists():
            versions = ", ".join(line.strip() for line in (folder / "versions.txt").read_text().splitlines())
        summary = folder / "summary.tsv"
        for line in summary.read_text().splitlines() if summary.exists() else []:
            name, rc, seconds = line.split("\t")
            verdict = _verdict(logs.get(name, ""))
            rows.append(f"| {name} | {'**passed**' if rc == '0' else 'FAILED'} | {verdict} | {seconds} s |")
    head = [f"Run on {date} with `tools/gpu_carry.sh` + `tools/gpu_verify.sh`, strict checks on.",
            f"Machine (nvidia-smi: name, compute capability, memory, driver): {machine}.",
            f"Software: {versions}.", "",
            "| part | verdict | pytest's summary | wall time |", "|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.stdout.write(main([Path(p) for p in sys.argv[1:]]))
