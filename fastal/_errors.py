"""The errors fastal raises for bad input: one root, four kinds a caller may tell apart.

Every user error is a :class:`FastalError` (a ``ValueError``), so ``except FastalError``
catches them all. The subclasses say which kind of problem it is:

- :class:`DataError` -- the data itself: wrong shape or dtype, NaN/inf, rows that are not
  probabilities, missing/null/duplicated ids, labels for rows not in the pool, a column the
  caller named that the data does not have;
- :class:`ArgumentError` -- an argument's value: ``k``, a method or strategy name, an option,
  a seed, a size, an output path of the wrong kind;
- :class:`FileError` -- a path that is missing, unreadable, truncated, corrupt or of a
  foreign format (also an ``OSError``);
- :class:`LedgerError` -- a project's label ledger: not a fastal ledger, another project's,
  corrupt, or locked by another command.

The message names the argument, what was expected and what was given, e.g.
``probs must be 2-D (rows, classes); got shape (10,)``.
"""


class FastalError(ValueError):
    """Raised for invalid input at a public entry point (root of fastal's errors).

    It subclasses ``ValueError`` so that code catching ``ValueError`` keeps working.
    """


class DataError(FastalError):
    """The data is invalid: shape, dtype, non-finite values, probabilities, ids, labels."""


class ArgumentError(FastalError):
    """An argument has an invalid value: k, a method/strategy name, an option, a size."""


class FileError(FastalError, OSError):
    """A file or directory is missing, unreadable, truncated, corrupt or of a foreign format."""


class LedgerError(FastalError):
    """A project's ledger cannot be used: foreign, corrupt, another project's, or locked."""
