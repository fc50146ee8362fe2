"""The one error type fastal raises for bad input."""


class FastalError(ValueError):
    """Raised for invalid input at a public entry point.

    The message names the argument, what was expected and what was given, e.g.
    ``probs must be 2-D (rows, classes); got shape (10,)``. It subclasses
    ``ValueError`` so that code catching ``ValueError`` keeps working.
    """
