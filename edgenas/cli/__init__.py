"""``edgenas`` command line: argument parsing and printing over the library (contracts in README, 'CLI')."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..errors import EdgeNASError
from .parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from .commands import COMMANDS

    name = args.command_name
    if name == "latency" and getattr(args, "latency_command", None):
        name = f"latency {args.latency_command}"
    try:
        return COMMANDS[name](args)
    except EdgeNASError as exc:
        print(f"edgenas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgenas: interrupted", file=sys.stderr)
        return 130
