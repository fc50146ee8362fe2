"""Streamed top_k from Parquet vs ``pq.read_table`` of the same columns, per layout and codec.

One run, one machine, the same pool written in every layout a user can choose (one
``fixed_size_list<float32>`` column, one ``list<float32>`` column, one float32 column per
class), each with no compression, snappy and zstd. For each file, interleaved (best of
``--repeat``, the order alternating): ``pyarrow.parquet.read_table(path, columns=[the
value columns, id])`` with all threads, ``fastal.top_k(path, 100, "margin",
id_column="id")`` (row groups decoded in parallel), and the previous reader (one record
batch at a time on the calling thread, ``readahead=0``). Every pick is checked against
``top_k`` on the array in memory. Peak RSS added by fastal's scan is measured in a fresh
process after a warm-up on a small file of the same layout and codec (three row groups,
so the warm-up runs the same parallel reader): the high-water mark is reset through
``/proc/self/clear_refs`` after the warm-up (the scan's peak, not the warm-up's) minus the
RSS at that point; the median of ``--rss-runs`` such processes (default 3) is reported,
with their range. Then, with ``--parts N``
(default 20), the same pool as a directory of N part files of one row group each (as Spark
writes them), ``pq.read_table(directory)`` against ``fastal.top_k(directory)``. Last, each
layout converted once with ``fastal.io.convert`` and scanned as Arrow IPC (memory-mapped).

    nice -n 5 python bench/bench_parquet.py                  # 10M x 10, about 5 minutes
    nice -n 5 python bench/bench_parquet.py --quick          # 1M x 10, a smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import fastal  # noqa: E402

LAYOUTS = ("fixed_size_list", "list", "columns")
CODECS = ("none", "snappy", "zstd")

RSS_CODE = """
import fastal
fastal.top_k({small!r}, 5, 'margin', column={column!r}, id_column='id')
print('BASE', _rss('VmRSS'))
with open('/proc/self/clear_refs', 'w') as fh:  # VmHWM from here: the warm-up's peak not counted
    fh.write('5')
sel = fastal.top_k({path!r}, 100, 'margin', column={column!r}, id_column='id')
"""


def make_probs(n, c, seed=0, block=1 << 20):
    """Softmax of Gaussian logits with a per-row temperature (confident and uncertain rows)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, c), dtype=np.float32)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        logits = rng.standard_normal((hi - lo, c), dtype=np.float32)
        logits *= rng.uniform(0.5, 6.0, size=(hi - lo, 1)).astype(np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        out[lo:hi] = p
    return out


def layout_table(probs, layout):
    import pyarrow as pa

    n, c = probs.shape
    cols = {"id": pa.array(np.arange(n, dtype=np.int64) + 1_000_000_000)}
    flat = pa.array(probs.ravel())
    if layout == "fixed_size_list":
        cols["probs"] = pa.FixedSizeListArray.from_arrays(flat, c)
    elif layout == "list":
        offsets = pa.array(np.arange(0, n * c + 1, c, dtype=np.int32))
        cols["probs"] = pa.ListArray.from_arrays(offsets, flat)
    else:
        for j in range(c):
            cols[f"p{j}"] = pa.array(probs[:, j])
    return pa.table(cols)


def value_column(layout, c):
    return [f"p{j}" for j in range(c)] if layout == "columns" else "probs"


def interleaved_best(fns: dict, repeat: int, cpu: dict | None = None) -> dict:
    """Best wall time of each function, run in turn (order reversed every other round).

    ``cpu``, if given, receives each function's smallest CPU time (user + system, all
    threads of this process): on a shared machine it moves much less than wall time.
    """
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    if cpu is not None:
        cpu.update({name: float("inf") for name in fns})
    names = list(fns)
    for r in range(repeat):
        for name in (names if r % 2 == 0 else names[::-1]):
            c0 = time.process_time()
            t0 = time.perf_counter()
            fns[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
            if cpu is not None:
                cpu[name] = min(cpu[name], time.process_time() - c0)
    return best


def directory_row(args, tmp, table, layout, codec, column, read_columns, want):
    """The pool written as ``args.parts`` files of one row group each; one table row."""
    import pyarrow.parquet as pq

    n = table.num_rows
    directory = os.path.join(tmp, f"parts-{layout}-{codec}")
    os.makedirs(directory)
    step = -(-n // args.parts)
    for i, lo in enumerate(range(0, n, step)):
        pq.write_table(table.slice(lo, step), os.path.join(directory, f"part-{i:05d}.parquet"),
                       row_group_size=step, compression=codec)
    got = fastal.top_k(directory, 100, "margin", column=column, id_column="id")
    assert np.array_equal(got.indices, want.indices), (layout, codec, "parts")
    assert np.array_equal(got.scores, want.scores), (layout, codec, "parts")
    cpu = {}
    best = interleaved_best({
        "read_table": lambda: pq.read_table(directory, columns=read_columns),
        "fastal": lambda: fastal.top_k(directory, 100, "margin", column=column, id_column="id"),
    }, args.repeat, cpu)
    return [layout, codec, _common.fmt_rate(n / best["read_table"]),
            _common.fmt_rate(n / best["fastal"]), f"**{best['read_table'] / best['fastal']:.0%}**",
            f"{cpu['read_table']:.2f} / {cpu['fastal']:.2f}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--row-group-rows", type=int, default=1 << 18,
                        help="rows per Parquet row group (default 262,144)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--no-convert", action="store_true", help="skip the Arrow IPC rows")
    parser.add_argument("--parts", type=int, default=20,
                        help="also write the pool as this many part files of one row group "
                             "each in a directory, as Spark writes them (0: skip)")
    parser.add_argument("--rss-runs", type=int, default=3,
                        help="fresh processes measuring each file's peak RSS (the median shown)")
    parser.add_argument("--quick", action="store_true", help="1M rows, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeat = 1_000_000, 2

    import pyarrow as pa
    import pyarrow.parquet as pq
    from fastal.io import convert
    from fastal.io.arrow import ParquetSource

    n, c = args.rows, args.classes
    print(f"Machine: {_common.machine()}, pyarrow {pa.__version__}, pyarrow cpu_count "
          f"{pa.cpu_count()}", file=sys.stderr)
    probs = make_probs(n, c)
    ids = np.arange(n, dtype=np.int64) + 1_000_000_000
    want = fastal.top_k(probs, 100, "margin")
    # The warm-up file has three row groups, so that it runs the same parallel reader: the
    # decoding threads' allocator heaps are a fixed cost, whatever the pool size.
    small = make_probs(3 * args.row_group_rows, c, seed=2)
    rows, ipc_rows, part_rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="fastal-bench-pq-", dir=os.environ.get("TMPDIR")) as tmp:
        for layout in args.layouts.split(","):
            table = layout_table(probs, layout)
            small_table = layout_table(small, layout)
            column = value_column(layout, c)
            read_columns = (column if isinstance(column, list) else [column]) + ["id"]
            for codec in args.codecs.split(","):
                path = os.path.join(tmp, f"{layout}-{codec}.parquet")
                small_path = os.path.join(tmp, f"small-{layout}-{codec}.parquet")
                pq.write_table(table, path, row_group_size=args.row_group_rows, compression=codec)
                pq.write_table(small_table, small_path, row_group_size=args.row_group_rows,
                               compression=codec)
                got = fastal.top_k(path, 100, "margin", column=column, id_column="id")
                assert np.array_equal(got.indices, want.indices), (layout, codec)
                assert np.array_equal(got.scores, want.scores), (layout, codec)
                assert np.array_equal(got.ids, ids[want.indices]), (layout, codec)
                readahead = ParquetSource(path, column, "id").readahead()
                cpu = {}
                best = interleaved_best({
                    "read_table": lambda: pq.read_table(path, columns=read_columns),
                    "fastal": lambda: fastal.top_k(path, 100, "margin", column=column,
                                                   id_column="id"),
                    "sequential": lambda: fastal.top_k(
                        ParquetSource(path, column, "id", readahead=0), 100, "margin"),
                }, args.repeat, cpu)
                size = os.path.getsize(path)
                # One fresh process's peak moves by tens of MB with the allocator's timing
                # (7-68 MB for the same file, session 26): the median of --rss-runs, and
                # the range beside it.
                added = sorted(_common.peak_rss_of(RSS_CODE.format(
                    path=path, small=small_path, column=column))["added"]
                    for _ in range(args.rss_runs))
                rss = {"added": added[len(added) // 2], "low": added[0], "high": added[-1]}
                rows.append([layout, codec, f"{size / 1e6:,.0f} MB",
                             _common.fmt_rate(n / best["read_table"]),
                             _common.fmt_rate(n / best["fastal"]),
                             f"**{best['read_table'] / best['fastal']:.0%}**",
                             _common.fmt_rate(n / best["sequential"]),
                             f"{best['read_table'] / best['sequential']:.0%}",
                             f"{cpu['read_table']:.2f} / {cpu['fastal']:.2f} / "
                             f"{cpu['sequential']:.2f}",
                             str(readahead),
                             f"{rss['added'] / 1e6:,.1f} MB ({rss['low'] / 1e6:,.1f}-"
                             f"{rss['high'] / 1e6:,.1f})", f"{rss['added'] / size:.1%}"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
                if args.parts:
                    part_rows.append(directory_row(args, tmp, table, layout, codec, column,
                                                   read_columns, want))
                    print(" | ".join(part_rows[-1]), file=sys.stderr, flush=True)
            if args.no_convert:
                continue
            source = os.path.join(tmp, f"{layout}-{args.codecs.split(',')[0]}.parquet")
            out = os.path.join(tmp, f"{layout}.arrow")
            t0 = time.perf_counter()
            convert(source, out)
            seconds = time.perf_counter() - t0
            got = fastal.top_k(out, 100, "margin", column=column, id_column="id")
            assert np.array_equal(got.indices, want.indices) and np.array_equal(got.scores, want.scores)
            best = interleaved_best({
                "parquet": lambda: fastal.top_k(source, 100, "margin", column=column,
                                                id_column="id"),
                "ipc": lambda: fastal.top_k(out, 100, "margin", column=column, id_column="id"),
            }, args.repeat)
            ipc_rows.append([layout, f"{seconds:.2f} s ({n / seconds / 1e6:,.1f} M rows/s)",
                             f"{os.path.getsize(out) / 1e6:,.0f} MB",
                             _common.fmt_rate(n / best["parquet"]),
                             _common.fmt_rate(n / best["ipc"]),
                             f"{best['parquet'] / best['ipc']:.1f}x"])
            print(" | ".join(ipc_rows[-1]), file=sys.stderr, flush=True)
    print(f"\n{n:,} x {c} float32 + int64 id, row groups of {args.row_group_rows:,} rows, "
          f"top_k(k=100, margin), best of {args.repeat}\n")
    print(_common.table(
        ["layout", "codec", "file", "read_table rows/s", "fastal rows/s",
         "fastal / read_table", "sequential reader rows/s", "sequential / read_table",
         "CPU s: read_table / fastal / sequential", "units ahead",
         f"peak RSS added (median of {args.rss_runs}, range)", "RSS added / file"], rows))
    if part_rows:
        print(f"\nThe same pool as a directory of {args.parts} part files of one row group "
              f"each (as Spark writes them), `pq.read_table(directory)` against "
              f"`fastal.top_k(directory)`, best of {args.repeat}:\n")
        print(_common.table(["layout", "codec", "read_table rows/s", "fastal rows/s",
                             "fastal / read_table", "CPU s: read_table / fastal"], part_rows))
    if ipc_rows:
        print(f"\nConverted once with `fastal convert` (from the {args.codecs.split(',')[0]} "
              f"file), then scanned memory-mapped:\n")
        print(_common.table(["layout", "convert", "Arrow file", "top_k from Parquet rows/s",
                             "top_k from Arrow rows/s", "Arrow / Parquet"], ipc_rows))


if __name__ == "__main__":
    main()
