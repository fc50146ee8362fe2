"""The ``fastal`` command: a thin shell over the public functions (it never computes).

One module per command (or family of commands); each has ``add_parser(sub)`` and ``run(args)``.
``main`` builds the parser from :data:`_COMMANDS` and turns every ``FastalError`` into a
one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from .._errors import FastalError
from . import convert, demo, listing, project, score, select
from . import simulate, warmup
from ._common import METHOD_HELP

# name -> (module with add_parser, runner). Order = order in `fastal --help`.
_COMMANDS = {
    "score": score.run,
    "select": select.run,
    **project.RUNNERS,
    "demo": demo.run,
    "simulate": simulate.run,
    "convert": convert.run,
    "warmup": warmup.run,
    "strategies": listing.run_strategies,
    "methods": listing.run_methods,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastal",
        description="fastal: decide which examples to label next.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=METHOD_HELP,
    )
    parser.add_argument("--version", action="version", version=f"fastal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    score.add_parser(sub)
    select.add_parser(sub)
    project.add_parsers(sub)
    demo.add_parser(sub)
    simulate.add_parser(sub)
    convert.add_parser(sub)
    warmup.add_parser(sub)
    listing.add_parsers(sub)
    return parser


def main(argv=None) -> int:
    """Run the ``fastal`` command line; return the exit code (0 ok, 2 user error)."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except FastalError as exc:
        print(f"fastal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
