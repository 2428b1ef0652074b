"""``python -m trtlab.serve prepare [--perf-analyzer]``: set up the Python-backend stub environment (CI set-up step).

``python -m trtlab.serve watch <pid> <marker>`` is the watchdog a :class:`~trtlab.serve.TritonServer` starts
(:func:`trtlab.serve.process.start_watchdog`), not a command for people.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from trtlab.serve import process
from trtlab.serve.perf import PERF_ANALYZER_WHEEL, install_perf_analyzer
from trtlab.serve.server import _bundled_server_dir, check_python_backend


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtlab.serve")
    commands = parser.add_subparsers(dest="command", required=True, metavar="prepare")
    prepare = commands.add_parser("prepare", help="check the bundled tritonserver and create the stub environment")
    prepare.add_argument("--perf-analyzer", action="store_true",
                         help=f"also extract perf_analyzer from the {PERF_ANALYZER_WHEEL} wheel into bin/")
    watch = commands.add_parser("watch")  # internal: the server's watchdog
    watch.add_argument("server_pid", type=int)
    watch.add_argument("marker")
    args = parser.parse_args(argv)
    if args.command == "watch":
        process.watch(args.server_pid, args.marker)
        return 0
    print(f"tritonserver: {_bundled_server_dir() / 'bin' / 'tritonserver'}")
    print(check_python_backend())
    if args.perf_analyzer:
        print(f"perf_analyzer: {install_perf_analyzer()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
