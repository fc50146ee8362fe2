"""``fastal strategies`` and ``fastal methods``: what can be asked for."""

from __future__ import annotations

from ._common import METHOD_HELP


def add_parsers(sub):
    sub.add_parser("strategies", help="list the selection strategies")
    sub.add_parser("methods", help="list the scoring methods and their formulas")


def run_strategies(args) -> int:
    from ..select import strategies

    for name, text in strategies().items():
        print(f"{name:<18} {text}")
    return 0


def run_methods(args) -> int:
    print(METHOD_HELP, end="")
    return 0
