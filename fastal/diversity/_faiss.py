"""FAISS settings shared by the diversity strategies."""

from __future__ import annotations

import contextlib

import numpy as np

# FAISS's exact search allocates a (query block x database block) float32 distance table per
# call, 4096 x 1024 by default: 16 MiB, whatever the call's size. Database blocks of 256 and
# query blocks of 256 to 1024 make it 256 KiB to 1 MiB (2 bytes per pool row at most); the GEMMs stay large enough to run
# at nearly full speed (interleaved rounds, 1000 database rows: 256 x 256 within noise of
# 512 x 256 at d = 384 and d = 64, about 10 % slower than 1024 x 256 at d = 128).
QUERY_BLOCK = 256
MAX_QUERY_BLOCK = 1024
DATABASE_BLOCK = 256


def query_block(n_rows):
    """FAISS query block for a job over ``n_rows`` rows: the distance table stays within
    ``max(256 KiB, 2 bytes per row)`` (a power of two from 256 to 1024 rows)."""
    budget = max(QUERY_BLOCK * DATABASE_BLOCK * 4, 2 * n_rows)
    rows = 1 << int(np.floor(np.log2(budget / (DATABASE_BLOCK * 4))))
    return int(min(max(rows, QUERY_BLOCK), MAX_QUERY_BLOCK))


@contextlib.contextmanager
def small_search_blocks(query_rows=QUERY_BLOCK, database_rows=DATABASE_BLOCK):
    """Run FAISS flat searches with a small distance table (``query_rows`` x
    ``database_rows`` float32: 256 KiB by default), then restore FAISS's block sizes.

    FAISS keeps these block sizes in process-wide variables: a FAISS search in another
    thread at the same time runs with the small blocks too (same results, less memory).
    """
    import faiss

    cvar = faiss.cvar
    before = cvar.distance_compute_blas_query_bs, cvar.distance_compute_blas_database_bs
    cvar.distance_compute_blas_query_bs = int(query_rows)
    cvar.distance_compute_blas_database_bs = int(database_rows)
    try:
        yield
    finally:
        cvar.distance_compute_blas_query_bs, cvar.distance_compute_blas_database_bs = before


@contextlib.contextmanager
def single_threaded_faiss():
    """Run FAISS calls on the calling thread only (``omp_set_num_threads(1)``), then restore
    FAISS's thread count. For many small searches: each multi-threaded call pays an OpenMP
    fork-join, which costs milliseconds when FAISS's threads spin or the machine is busy.
    Like the block sizes, the setting is process-wide while it lasts."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def knn_l2(queries, database, k, distances, labels):
    """FAISS's exact k nearest ``database`` rows (squared L2) of each query row, written into
    ``distances`` (nq, k) float32 and ``labels`` (nq, k) int64; no index is built, so the
    database is not copied. Queries and database: C-contiguous float32 (checked)."""
    import faiss

    nq, d = queries.shape
    for name, a, dtype in (("queries", queries, np.float32), ("database", database, np.float32),
                           ("distances", distances, np.float32), ("labels", labels, np.int64)):
        if a.dtype != dtype or not a.flags.c_contiguous:
            raise TypeError(f"knn_l2: {name} must be C-contiguous {np.dtype(dtype)}")
    if database.shape[1] != d or distances.shape != (nq, k) or labels.shape != (nq, k):
        raise ValueError("knn_l2: shapes do not match")
    faiss.knn_L2sqr(faiss.swig_ptr(queries), faiss.swig_ptr(database), d, nq,
                    database.shape[0], k, faiss.swig_ptr(distances), faiss.swig_ptr(labels))
