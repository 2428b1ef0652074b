"""Command line: ``python -m trtlab doctor`` (environment report), ``python -m trtlab build-labs ...``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["doctor"]:
        from trtlab.doctor import main as doctor

        return doctor()
    if args[:1] == ["build-labs"]:
        from trtlab.course import main as course

        return course(args)
    print("usage: python -m trtlab doctor | build-labs [--instructor | --out DIR | --check] [--force]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
