"""fastal.distributed on a LocalCluster of 2 worker processes: identical to one machine.

One cluster for the module (started once, ~5 s); small pools split into uneven partitions
(3 Parquet files of 3000, 5000 and 2100 rows, row groups of 700, the last file in float64)
so that partition boundaries cut BADGE's 4096-row sampling blocks and dtypes are mixed.
Every test compares the distributed result with the single-machine one, exactly.
"""

import logging
import os
import signal

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import fastal  # noqa: E402
import fastal.distributed  # noqa: E402,F401
from fastal import ArgumentError, DataError, FastalError  # noqa: E402
from fastal.distributed._workers import restore_environ  # noqa: E402
from fastal.models import Committee, LinearHead  # noqa: E402

SIZES = (3000, 5000, 2100)
D, C, M = 6, 4, 3


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    saved = dict(os.environ)  # the nanny sets OMP_NUM_THREADS=1 etc. here and keeps it
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
    restore_environ(saved)


def _list(values):
    flat = pa.array(np.ascontiguousarray(values).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Files + the same arrays in memory (what one machine reads)."""
    rng = np.random.default_rng(0)
    n = sum(SIZES)
    centres = rng.normal(size=(8, D)) * 4
    X = centres[rng.integers(0, 8, n)] + rng.normal(size=(n, D))
    probs = rng.dirichlet(np.full(C, 0.7), size=n)
    probs[100:110] = probs[9000:9010]          # equal scores across partitions: ties
    probs[200:203] = np.eye(C)[:3]             # one-hot rows (score 0)
    logits = rng.normal(size=(n, C)) * 3
    members = rng.dirichlet(np.ones(C), size=(M, n))
    regression = rng.normal(size=(M, n))
    directory = tmp_path_factory.mktemp("pool")
    start = 0
    for f, size in enumerate(SIZES):
        rows = slice(start, start + size)
        dtype = np.float64 if f == 2 else np.float32
        cols = {"id": np.arange(start, start + size) * 10,
                "emb": _list(X[rows].astype(dtype)),
                "probs": _list(probs[rows].astype(np.float32)),
                "logits": pa.array(list(logits[rows])),  # list<double>, variable length type
                **{f"m{m}": _list(members[m, rows].astype(np.float32)) for m in range(M)},
                **{f"r{m}": regression[m, rows].astype(np.float32) for m in range(M)}}
        pq.write_table(pa.table(cols), directory / f"part{f}.parquet", row_group_size=700)
        start += size
    return {"dir": str(directory), "X": X.astype(np.float32), "probs": probs.astype(np.float32),
            "n": n}


def same(a, b, exact_extra=()):
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.scores.dtype == b.scores.dtype and a.n_pool == b.n_pool and a.method == b.method
    if b.ids is not None:
        np.testing.assert_array_equal(a.ids, b.ids)
    for key in exact_extra:
        np.testing.assert_array_equal(a.extra[key], b.extra[key])


# --------------------------------------------------------------------------- scoring


SCORING_CASES = [
    *[(m, {"column": "probs"}) for m in fastal.UNCERTAINTY_METHODS],
    ("margin", {"column": "logits", "from_logits": True}),
    ("expected_gradient_length_bias", {"column": "probs"}),
    *[(m, {"column": ["m0", "m1", "m2"]}) for m in
      ("vote_entropy", "consensus_entropy", "bald", "kl_max", "variation_ratio",
       "consensus_margin")],
    ("committee_std", {"column": ["r0", "r1", "r2"]}),
]


def test_score_and_top_k_match_one_machine_for_every_method(client, pool):
    for method, kw in SCORING_CASES:
        if method in ("entropy", "margin", "bald", "committee_std"):  # every row's score
            np.testing.assert_array_equal(fastal.score(pool["dir"], method, client=client, **kw),
                                          fastal.score(pool["dir"], method, **kw), err_msg=method)
        same(fastal.top_k(pool["dir"], 40, method, id_column="id", client=client, **kw),
             fastal.top_k(pool["dir"], 40, method, id_column="id", **kw))


def test_models_and_row_group_partitions(client, pool):
    rng = np.random.default_rng(1)
    heads = [LinearHead(rng.normal(size=(D, C)), rng.normal(size=C)) for _ in range(3)]
    cases = [("margin", heads[0]), ("expected_gradient_length", heads[0]),
             ("bald", Committee(heads))]
    for method, model in cases:
        one = fastal.top_k(pool["dir"], 30, method, column="emb", model=model, id_column="id")
        same(fastal.top_k(pool["dir"], 30, method, column="emb", model=model, id_column="id",
                          client=client), one)
        # Parquet files split into partitions of whole row groups (offsets from footers)
        same(fastal.distributed.top_k(pool["dir"], 30, method, column="emb", model=model,
                                      id_column="id", client=client, partition_rows=1400), one)
    split = fastal.distributed.pool(pool["dir"], column="probs", partition_rows=1400)
    assert split.n_partitions == 9 and split.n_rows == pool["n"]
    np.testing.assert_array_equal(split.offsets()[[0, -1]], [0, pool["n"]])


def test_determinism_matrix_across_partitionings(client, pool, capsys):
    # Issue 14's determinism matrix, Dask axis: the same picks for every way of cutting the
    # pool into partitions (one per file, whole row groups of 700 or 2 x 700 rows, a dask
    # array in uneven chunks), for probabilities, logits, a committee and a linear head.
    head = LinearHead(np.random.default_rng(2).normal(size=(D, C)), np.zeros(C))
    cases = [("margin", dict(column="probs")), ("entropy", dict(column="probs")),
             ("least_confidence", dict(column="logits", from_logits=True)),
             ("bald", dict(column=["m0", "m1", "m2"])),
             ("margin", dict(column="emb", model=head))]
    cuttings = [None, 700, 1400]
    for method, kw in cases:
        one = fastal.top_k(pool["dir"], 25, method, id_column="id", **kw)
        for rows in cuttings:
            same(fastal.distributed.top_k(pool["dir"], 25, method, id_column="id",
                                          client=client, partition_rows=rows, **kw), one)
    import dask.array as da

    arr = da.from_array(pool["probs"], chunks=((1, 4999, 2600, 2500), (C,)))
    one = fastal.top_k(pool["probs"], 25, "margin")
    same(fastal.top_k(arr, 25, "margin", client=client), one)
    with capsys.disabled():
        print(f"\ndeterminism matrix (Dask partitionings): {len(cuttings)} cuttings x "
              f"{len(cases)} cases + 1 uneven dask array = {len(cuttings) * len(cases) + 1} "
              f"comparisons")


def test_dask_arrays_dataframes_and_committee_layouts(client, pool):
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    probs = pool["probs"]
    chunks = (1234, 3000, 2, 5864)  # uneven, one tiny partition
    parr = da.from_array(probs, chunks=(chunks, C))
    same(fastal.top_k(parr, 25, "entropy", client=client), fastal.top_k(probs, 25, "entropy"))
    rng = np.random.default_rng(2)
    members = rng.dirichlet(np.ones(C), size=(M, pool["n"])).astype(np.float32)
    marr = da.from_array(members, chunks=(1, chunks, C))
    same(fastal.top_k(marr, 25, "bald", client=client), fastal.top_k(members, 25, "bald"))
    same(fastal.top_k([da.from_array(m, chunks=(2500, C)) for m in members], 25, "kl_max",
                      client=client), fastal.top_k(list(members), 25, "kl_max"))
    votes = rng.integers(0, 5, size=(7, pool["n"]))
    np.testing.assert_array_equal(
        fastal.score(da.from_array(votes, chunks=(7, chunks)), "vote_entropy", n_classes=5,
                     client=client),
        fastal.score(votes, "vote_entropy", n_classes=5))
    # a dask dataframe: partition lengths are in no metadata, ids carried
    frame = pd.DataFrame(probs, columns=[f"p{j}" for j in range(C)])
    frame["id"] = np.arange(pool["n"]) + 7
    ddf = dd.from_pandas(frame, npartitions=3)
    cols = [f"p{j}" for j in range(C)]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    same(fastal.top_k(ddf, 25, "margin", column=cols, id_column="id", client=client),
         fastal.top_k(table, 25, "margin", column=cols, id_column="id"))
    labeled = np.arange(0, pool["n"], 5)
    same(fastal.select(ddf, 25, "margin", column=cols, labeled=labeled, client=client),
         fastal.select(probs, 25, "margin", labeled=labeled))


# --------------------------------------------------------------------------- selection


SELECT_CASES = [
    ("margin", {}), ("random", {}), ("kcenter", {}), ("kcenter", {"metric": "cosine"}),
    ("weighted_kcenter", {"method": "entropy"}), ("uncertain_kcenter", {"beta": 4}),
    ("badge", {}),
]


@pytest.mark.parametrize("strategy,options", SELECT_CASES,
                         ids=[f"{s}-{o.get('metric', '')}" for s, o in SELECT_CASES])
def test_select_matches_one_machine(client, pool, strategy, options):
    spec = fastal.STRATEGIES[strategy]
    hybrid = "probs" in spec.needs and "embeddings" in spec.needs
    column = "probs" if spec.needs == ("probs",) else "emb"
    labeled = np.random.default_rng(3).choice(pool["n"], 60, replace=False)
    for lab in (None, labeled):
        got = fastal.select(pool["dir"], 24, strategy, client=client, column=column,
                            probs="probs" if hybrid else None, labeled=lab, seed=5, **options)
        want = fastal.select(pool["dir"], 24, strategy, column=column,
                             probs=pool["probs"] if hybrid else None, labeled=lab, seed=5,
                             **options)
        # the covering radii too: both sides sum each distance in one defined order
        same(got, want, exact_extra=[k for k in ("uncertainty", "candidates", "probability",
                                                 "n_uniform", "covering_radius")
                                     if k in want.extra])


def test_exact_kcenter_ties_and_duplicates(client):
    import dask.array as da

    # integer-valued rows with many duplicates: every distance is exact, ties everywhere
    rng = np.random.default_rng(4)
    X = rng.integers(0, 3, size=(3001, 3)).astype(np.float32)
    arr = da.from_array(X, chunks=((700, 1, 1300, 1000), 3))
    for labeled in (None, [5, 2999], X[:4] + 0.5):
        got = fastal.distributed.kcenter(arr, 40, client=client, labeled=labeled, seed=1)
        want = fastal.kcenter(X, 40, labeled=labeled, seed=1)
        same(got, want, exact_extra=["covering_radius"])


def test_two_round_is_within_its_bound(client, pool):
    rng = np.random.default_rng(6)
    unstructured = rng.uniform(size=(6000, 8)).astype(np.float32)
    import dask.array as da

    for data, X in ((pool["dir"], pool["X"]), (da.from_array(unstructured, chunks=(1500, 8)),
                                               unstructured)):
        column = "emb" if isinstance(data, str) else None
        exact = fastal.kcenter(X, 30, seed=0).extra["covering_radius"][-1]
        got = fastal.distributed.kcenter(data, 30, client=client, column=column, seed=0,
                                         mode="two_round", core_set_factor=2)
        assert len(got) == 30 and np.unique(got.indices).size == 30
        radius = got.extra["covering_radius"]
        # certified: every row is within local radius of the union, which the picks cover
        assert radius <= got.extra["radius_bound"] * (1 + 1e-12)
        # no k centres can do better than half the greedy radius (Gonzalez)
        assert exact / 2 <= radius <= 4 * exact
        # the reported radius is the picks' true covering radius over the pool
        D = np.min(np.linalg.norm(X[:, None, :].astype(np.float64)
                                  - X[got.indices][None, :, :], axis=2), axis=1)
        np.testing.assert_allclose(radius, D.max(), rtol=1e-12)


def test_readme_cluster_section_runs(client, pool):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Running on a cluster\n.*?```python\n(.*?)```", text, re.S).group(1)
    code = code.replace('Client("tcp://scheduler:8786")', "the_client")
    code = code.replace('"/shared/pool/"', repr(pool["dir"])).replace(", 100,", ", 20,")
    env = {"the_client": client, "labeled": np.arange(0, pool["n"], 50)}
    exec(compile(code, "README cluster section", "exec"), env)
    same(env["batch"], fastal.select(pool["dir"], 20, "badge", column="emb",
                                     probs=pool["probs"], labeled=env["labeled"]))
    same(env["picks"], fastal.top_k(pool["dir"], 1000, "bald", column=["m0", "m1", "m2"],
                                    id_column="id"))


# --------------------------------------------------------------------------- hygiene, errors


def test_worker_threads_never_oversubscribe(client, pool):
    from fastal.distributed._workers import cores, set_task_threads, thread_plan

    fastal.top_k(pool["dir"], 5, "margin", column="probs", client=client)
    plan = thread_plan(client)
    assert sum(p for _, p in plan.values()) == 2

    def probe(plan):
        import numba

        return set_task_threads(plan), numba.get_num_threads(), cores()

    for n, numba_threads, n_cores in client.gather(
            [client.submit(probe, plan, pure=False, workers=[w]) for w in
             client.scheduler_info()["workers"]]):
        assert n == numba_threads
        threads_on_host = sum(t for t, _ in plan.values())
        assert numba_threads * threads_on_host <= max(n_cores, threads_on_host)
    # the kernels were loaded once per worker by the plugin, before any task
    warm = client.run(lambda dask_worker: getattr(dask_worker, "_fastal_warm", False))
    assert all(warm.values()) and len(warm) == 2


def test_errors(client, pool):
    with pytest.raises(ArgumentError, match="client must be a dask.distributed.Client; got"):
        fastal.top_k(pool["dir"], 5, "margin", column="probs", client="tcp://x:1")
    with pytest.raises(DataError, match="probs has 10 rows but data has 10100"):
        fastal.select(pool["dir"], 5, "badge", column="emb", probs=pool["probs"][:10],
                      client=client)
    with pytest.raises(ArgumentError, match="strategy 'typiclust' has no distributed form"):
        fastal.select(pool["dir"], 5, "typiclust", column="emb", client=client)
    with pytest.raises(FastalError, match="does not take beta"):
        fastal.select(pool["dir"], 5, "kcenter", column="emb", beta=3, client=client)
    with pytest.raises(FastalError, match="k=20000 is larger than the pool"):
        fastal.top_k(pool["dir"], 20000, "margin", column="probs", client=client)
    with pytest.raises(FastalError, match=r"labeled positions must be in \[0, 10100\)"):
        fastal.select(pool["dir"], 5, "margin", column="probs", labeled=[10100], client=client)
    with pytest.raises(ArgumentError, match="mode must be one of exact, two_round"):
        fastal.distributed.kcenter(pool["dir"], 5, column="emb", mode="fast", client=client)
    bad = pool["probs"].copy()
    bad[7777, 1] = np.nan  # raised on the worker, named by its global row
    import dask.array as da

    with pytest.raises(FastalError, match="row 7777"):
        fastal.top_k(da.from_array(bad, chunks=(3000, C)), 5, "margin", client=client)


def test_cli_scheduler_option(client, pool, tmp_path, capsys):
    from fastal.cli import main

    address = client.scheduler.address
    out = tmp_path / "picks.csv"
    assert main(["score", pool["dir"], "--k", "15", "--column", "probs", "--id-column", "id",
                 "--quiet", "--out", str(out), "--scheduler", address]) == 0
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(out)
    want = fastal.top_k(pool["dir"], 15, "margin", column="probs", id_column="id")
    np.testing.assert_array_equal(table["index"].to_numpy(), want.indices)
    np.testing.assert_array_equal(table["id"].to_numpy(), want.ids)
    out = tmp_path / "batch.parquet"
    assert main(["select", pool["dir"], "--k", "10", "--strategy", "badge", "--column", "emb",
                 "--probs-column", "probs", "--out", str(out), "--scheduler", address]) == 0
    want = fastal.select(pool["dir"], 10, "badge", column="emb", probs=pool["probs"])
    np.testing.assert_array_equal(pq.read_table(out)["index"].to_numpy(), want.indices)
    assert main(["score", pool["dir"], "--k", "5", "--scheduler", "localhost"]) == 2
    assert "scheduler must be an address like tcp://host:8786" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not allowed together
        main(["score", pool["dir"], "--k", "5", "--scheduler", address, "--local-workers", "2"])


def test_a_worker_lost_mid_job_gives_the_same_answer(client, pool):
    """Kill one worker process (SIGKILL) after the 3rd pick of an exact k-center: its shard
    is rebuilt elsewhere from its partitions and the centres so far; same picks."""
    want = fastal.select(pool["dir"], 12, "kcenter", column="emb", seed=2)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    def kill(t):
        if t == 3:
            os.kill(victim, signal.SIGKILL)

    got = fastal.distributed.kcenter(pool["dir"], 12, column="emb", seed=2, client=client,
                                     _on_pick=kill)
    same(got, want)
    assert got.extra["rebuilt_shards"] >= 1
    # scoring after the loss: Dask recomputes on the workers that are left
    same(fastal.top_k(pool["dir"], 20, "margin", column="probs", client=client),
         fastal.top_k(pool["dir"], 20, "margin", column="probs"))
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the process


def test_a_lost_badge_shard_is_rebuilt(client, pool):
    """Drop one BADGE shard (its actor, as a lost worker would) at pick 4: it is rebuilt
    from its partitions and the picks so far, and the batch is unchanged."""
    labeled = np.arange(0, pool["n"], 97)
    want = fastal.select(pool["dir"], 10, "badge", column="emb", probs=pool["probs"],
                         labeled=labeled, seed=1)

    def drop(t, shards):
        if t == 4:
            client.cancel(shards.futures[0], force=True)

    got = fastal.distributed.select(pool["dir"], 10, "badge", column="emb", probs="probs",
                                    labeled=labeled, seed=1, client=client, _on_pick=drop)
    same(got, want, exact_extra=["probability", "n_uniform"])
    assert got.extra["rebuilt_shards"] >= 1


def test_a_local_cluster_leaves_the_environment_as_it_was():
    # Dask's nanny sets OMP_NUM_THREADS=1 (and more) in the parent's environment for good;
    # connect(local_workers=...) must put it back (a later subprocess of the user's would
    # otherwise run single-threaded: found through a Parquet test after this module).
    before = dict(os.environ)
    with fastal.distributed.connect(local_workers=1) as local:
        assert len(local.scheduler_info(n_workers=-1)["workers"]) <= 1
    assert dict(os.environ) == before
