"""What several commands share: the methods' help text, output files, error reporting."""

from __future__ import annotations

import os
import sys

from .._errors import ArgumentError, FileError

METHOD_HELP = """\
uncertainty methods (higher score = more informative; p sorted so p(1) >= p(2)):
  entropy           -sum_j p_j log p_j (nats)
  least_confidence  1 - p(1)
  margin            1 - (p(1) - p(2))
  ratio             p(2) / p(1)

committee methods (one list column per member: --column m0,m1,...; q = mean of members):
  vote_entropy       entropy of the members' argmax votes
  consensus_entropy  H(q)                       (alias soft_vote_entropy)
  bald               H(q) - mean_m H(p_m)       (alias mutual_information)
  kl_max             max_m KL(p_m || q)
  variation_ratio    1 - (votes for the modal class) / M
  consensus_margin   1 - (q(1) - q(2))
  committee_std      std over members of regression predictions (one float column each)

expected model change:
  expected_gradient_length_bias  sum_y p_y ||p - e_y|| (gradient of the softmax bias)
"""

OUT_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".csv")


def check_out(out: str):
    """Refuse an output path whose format we cannot tell from its suffix."""
    if out != "-" and not out.lower().endswith(OUT_SUFFIXES):
        raise ArgumentError(
            f"--out must end in .parquet, .arrow, .feather or .csv (or be '-'); got {out!r}")
    parent = os.path.dirname(os.path.abspath(out)) if out != "-" else None
    if parent is not None and not os.path.isdir(parent):
        raise FileError(f"--out {out}: the directory {parent} does not exist")


def write_selection(selection, out: str):
    """Write a Selection as Parquet, Arrow IPC or CSV (by suffix), or CSV to stdout."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = selection.to_arrow()
    if out == "-":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        sys.stdout.write(sink.getvalue().to_pybytes().decode())
        return
    lower = out.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            pq.write_table(table, out)
        elif lower.endswith((".arrow", ".feather", ".ipc")):
            import pyarrow.feather as feather
            feather.write_feather(table, out)
        else:
            pacsv.write_csv(table, out)
    except OSError as exc:  # pyarrow's errors for unwritable paths are OSErrors
        raise FileError(f"cannot write --out {out}: {exc}") from exc


def column_arg(text):
    """``--column a,b,c`` -> ["a", "b", "c"]; a single name stays a string."""
    if text and "," in text:
        return text.split(",")
    return text


def add_cluster_options(parser):
    """``--scheduler`` / ``--local-workers``: run the command on a Dask cluster."""
    group = parser.add_argument_group(
        "on a Dask cluster (pip install 'fastal[distributed]'; the answer is the same)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on this Dask scheduler; its workers read the pool files")
    where.add_argument("--local-workers", type=int, metavar="N",
                       help="run on a local Dask cluster of N worker processes")


def cluster(args):
    """The client the cluster options ask for, as a context manager (None without them)."""
    from ..distributed import connect

    return connect(scheduler=args.scheduler, local_workers=args.local_workers)
