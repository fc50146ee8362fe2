"""Compile-time switches shared by every kernel.

One place for the fastmath flags (as stumpy does), so a precision problem has one switch.
The flags allow reassociation (vectorised reductions) and approximate functions, but never
``nnan``/``ninf`` (NaN and inf can reach a kernel and must be detected there) and never
``contract``: contracting ``a * b + c`` into an FMA rounds once on CPUs that have FMA and
twice on CPUs that do not, so the same row would score differently on two machines (found by
the determinism matrix with ``NUMBA_CPU_NAME=generic``). Kernels that want FMA speed call
``_kernels._math.fma``, which rounds once on every CPU.
"""

import os

# Numba's OpenMP threads spin between parallel regions by default; on a machine whose cores
# are busy (a training job beside the selection job) that made a 1M x 10 margin scoring 10x
# slower (76 ms vs 7 ms measured on 2 cores under load). Passive waiting costs a wake-up per
# kernel call, negligible at our chunk sizes. A user's own setting wins; this only works if
# set before the OpenMP runtime starts, hence at import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# No fast-math flags. With reassoc/arcp/afn LLVM may evaluate the same expression
# differently in a loop's vector body and its scalar remainder, so a row's score depended
# on where the chunk boundary put it (found: float32 entropy at C = 4, 8, 12, 16 differed by
# 1-2 ulp between chunk_rows=1 and one chunk). Without them every operation is IEEE and
# each fma is explicit (_math.fma): the same bits on any path, CPU or chunking. Measured on
# 2 cores, 2M x 10 float32 and 500k x 10 x 10 committees: no loss (within noise).
FASTMATH: set = set()

# Rows of probabilities must sum to 1 within this absolute tolerance and have no entry below
# -PROBABILITY_TOLERANCE; anything else is rejected (the user is told to pass logits).
PROBABILITY_TOLERANCE = 1e-3

# Target bytes of input per chunk when the caller does not choose ``chunk_rows``:
# large enough that the per-call cost of a parallel kernel (tens of microseconds) is
# negligible, small enough that a chunk stays in L2/L3 and memory stays bounded.
CHUNK_BYTES = 4 << 20
# In-memory arrays are sliced without copying, so their chunks can be larger: with passive
# OpenMP waiting each kernel call pays a thread wake-up (~50 us), which at 4 MiB chunks was
# measured to cost 20 % of the 10M x 10 margin rate; at 32 MiB it is ~3 %.
IN_MEMORY_CHUNK_BYTES = 32 << 20
MIN_CHUNK_ROWS = 1024

# Decoded bytes of Parquet row groups a scan may hold ahead of the row group it scores
# (which streams through); fastal.io.arrow.ParquetSource decodes whole row groups ahead
# when they fit, and larger ones in part (half of this among them).
PARQUET_READAHEAD_BYTES = 48 << 20
# Default chunk of a Parquet scan (rows = this / row width): each record batch is decoded at
# this size and scored as it is. Peak RSS added by a first scan decoding row groups on two
# threads was ~100 MB with 4 MiB batches and ~55-70 MB with 0.6 MiB ones (4M x 10 float32,
# 14 MB row groups).
PARQUET_CHUNK_BYTES = 1 << 20
# Consecutive Parquet row groups smaller than this are decoded as one unit by one thread
# (a unit costs a reader and a thread hand-off; files of tiny row groups would pay it per group).
PARQUET_TASK_BYTES = 4 << 20
