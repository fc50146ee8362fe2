"""FAISS settings shared by the diversity strategies."""

from __future__ import annotations

import contextlib

# FAISS's exact search allocates a (query block x database block) float32 distance table per
# call, 4096 x 1024 by default: 16 MiB, whatever the call's size. 1024 x 256 blocks make it
# 1 MiB; the GEMMs stay large enough to run at full speed (measured in bench/bench_kcenter.py).
QUERY_BLOCK = 1024
DATABASE_BLOCK = 256


@contextlib.contextmanager
def small_search_blocks():
    """Run FAISS flat searches (and k-means) with a 1 MiB distance table, then restore.

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
