"""FAISS settings shared by the diversity strategies."""

from __future__ import annotations

import contextlib

import numpy as np

# FAISS's exact search allocates a (query block x database block) float32 distance table per
# call, 4096 x 1024 by default: 16 MiB, whatever the call's size. 512 x 256 blocks make it
# 512 KiB; the GEMMs stay large enough to run at full speed (1024 x 256 and 512 x 256 within
# noise of each other at d = 128 and 384; 4096 x 1024 too, measured in session 2).
QUERY_BLOCK = 256
DATABASE_BLOCK = 256


@contextlib.contextmanager
def small_search_blocks():
    """Run FAISS flat searches (and k-means) with a 512 KiB distance table, then restore.

    FAISS keeps these block sizes in process-wide variables: a FAISS search in another
    thread at the same time runs with the small blocks too (same results, less memory).
    """
    import faiss

    cvar = faiss.cvar
    before = cvar.distance_compute_blas_query_bs, cvar.distance_compute_blas_database_bs
    cvar.distance_compute_blas_query_bs = QUERY_BLOCK
    cvar.distance_compute_blas_database_bs = DATABASE_BLOCK
    try:
        yield
    finally:
        cvar.distance_compute_blas_query_bs, cvar.distance_compute_blas_database_bs = before


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
