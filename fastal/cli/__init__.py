"""The ``fastal`` command: a thin shell over the public functions (it never computes).

One module per command (or family of commands); each has ``add_parser(sub)`` and ``run(args)``.
``main`` builds the parser from :data:`_COMMANDS` and turns every ``FastalError`` into a
one-line message and exit code 2. A reader that closes the pipe early (``fastal score ... |
head``) ends the command quietly with exit code 141, as a tool killed by SIGPIPE would.
"""

from __future__ import annotations

import argparse
import os
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


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what the shell shows for a tool killed by SIGPIPE


def main(argv=None) -> int:
    """Run the ``fastal`` command line; return the exit code.

    0 ok, 2 user error (one line on stderr), 141 when stdout was closed early by its reader.
    """
    args = _parser().parse_args(argv)
    try:
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except FastalError as exc:
        print(f"fastal: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a non-file object (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
