"""``fastal demo``: scoring speed on a synthetic pool, then simulated labelling on real data."""

from __future__ import annotations


def add_parser(sub):
    demo = sub.add_parser(
        "demo", help="scoring speed on a synthetic pool, then simulated labelling on real data",
        description="1) Write a synthetic pool (Arrow IPC, in a temporary directory), pick the top "
                    "rows with each uncertainty method, and print rows/s. 2) Simulate active "
                    "learning on real data (scikit-learn's digits; Fashion-MNIST too when cached) "
                    "with random, margin, k-center and uncertain k-center sampling; print how many "
                    "labels each needs to reach random sampling's accuracy and write the learning "
                    "curves (PNG, CSV) to --out-dir.")
    demo.add_argument("--rows", type=int, default=2_000_000, help="pool rows (default 2,000,000)")
    demo.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    demo.add_argument("--k", type=int, default=5, help="rows to pick (default 5)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out-dir", default="fastal-demo", help="where the plots go (default ./fastal-demo)")
    demo.add_argument("--repeats", type=int, default=3, help="simulation repeats (default 3)")
    demo.add_argument("--no-simulation", action="store_true", help="only the scoring speed demo")
    demo.add_argument("--datasets", default="digits,fashion",
                      help="simulation datasets, comma-separated (default digits,fashion)")
    return demo


def run(args) -> int:
    from .._validation import check_int
    from ..demo import run as run_demo, simulation

    # checked here, by their flag names: the demo pool is a temporary file the user never named
    check_int(args.rows, "--rows", 1)
    check_int(args.classes, "--classes", 2)
    check_int(args.k, "--k", 1, args.rows)
    check_int(args.seed, "--seed", 0)
    check_int(args.repeats, "--repeats", 1)
    run_demo(n_rows=args.rows, n_classes=args.classes, k=args.k, seed=args.seed)
    if not args.no_simulation:
        simulation(args.out_dir, repeats=args.repeats, datasets=args.datasets.split(","))
    return 0
