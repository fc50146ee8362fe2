"""``fastal warmup``: compile the kernels into Numba's on-disk cache (images, cluster workers)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub):
    from .._warmup import DEFAULT_TARGETS

    parser = sub.add_parser(
        "warmup", help="compile the kernels once into Numba's on-disk cache",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile (or load from the cache) the kernels of the given methods and "
                    "print what each step compiled and how long it took. Run it once when "
                    "building a container image or starting a cluster worker: later "
                    "processes load the compiled code instead of compiling it. The cache "
                    "lives next to the package when that is writable, else in Numba's "
                    "user-wide cache (~/.cache/numba; NUMBA_CACHE_DIR overrides).",
        epilog="example:\n  fastal warmup --methods margin,entropy --classes 10")
    parser.add_argument("--methods", default=",".join(DEFAULT_TARGETS),
                        help="comma-separated: uncertainty methods, committee, kcenter, badge "
                             "(default: all)")
    parser.add_argument("--classes", type=int, default=10,
                        help="class count of your model's outputs (default 10)")
    parser.add_argument("--dtypes", default="float32",
                        help="float32 and/or float64, comma-separated (default float32)")
    return parser


def run(args) -> int:
    import time

    from .._warmup import cache_dir, warmup

    t0 = time.perf_counter()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    steps = warmup(methods, n_classes=args.classes, dtypes=dtypes, out=sys.stdout)
    compiled = sum(s.compiled for s in steps)
    loaded = sum(s.loaded for s in steps)
    print(f"fastal warmup: compiled {compiled} kernels, loaded {loaded} from the cache in "
          f"{time.perf_counter() - t0:.1f} s; cache: {cache_dir()}")
    return 0
