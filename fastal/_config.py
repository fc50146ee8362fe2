"""Compile-time switches shared by every kernel.

One place for the fastmath flags (as stumpy does), so a precision problem has one switch.
The flags allow reassociation (vectorised reductions), contraction (FMA) and approximate
functions, but never ``nnan``/``ninf``: NaN and inf can reach a kernel and must be detected there.
"""

FASTMATH = {"reassoc", "contract", "arcp", "nsz", "afn"}

# Target bytes of input per chunk when the caller does not choose ``chunk_rows``:
# large enough that the per-call cost of a parallel kernel (tens of microseconds) is
# negligible, small enough that a chunk stays in L2/L3 and memory stays bounded.
CHUNK_BYTES = 4 << 20
MIN_CHUNK_ROWS = 1024
