"""Committee kernels: disagreement between M members, and expected gradient length.

Plain arrays in, plain arrays out, no validation beyond the checks that must touch every
element. As in ``uncertainty.py``, those checks are fused into the scoring pass: a row with
an invalid member row (non-finite entry, negative probability, sum away from 1) gets NaN
in every requested output and is counted in the return value; the driver turns the count
into a precise error.

Every kernel computes any subset of its measures in one pass over the input. The measures
wanted are given as an int64 array of codes ``codes`` and ``out`` has shape
(len(codes), rows): ``out[k, i]`` is measure ``codes[k]`` of row ``i``; ``out`` may be
float32 or float64. ``_committee_scores`` (float64 input, logits) computes in float64;
``_committee_probs32`` (float32 probabilities) uses float32 logarithms and float64 sums,
with the error bound stated there.

Inputs may be strided views (e.g. the (M, rows, C) transpose of a (rows, M*C) GEMM output);
they are only indexed, never reshaped.
"""

import numpy as np
from numba import njit

from .._config import FASTMATH
from ._math import _EXP_LOWEST, HELPER, KERNEL, exp32_in_range, log32
from ._parallel import run_tasks
from .uncertainty import _lanes

# Committee measures from member probabilities / logits, (M, rows, C).
VOTE_ENTROPY, CONSENSUS_ENTROPY, BALD, KL_MAX, VARIATION_RATIO, CONSENSUS_MARGIN = range(6)
# Expected gradient length, from features (rows, d) and probabilities / logits (rows, C).
EGL, EGL_BIAS = 0, 1

# Elements (M * C * rows) of one block of the committee kernel: the block is read once per
# member for the main pass and again for the KL-max pass, which then hits L2 (64 KiB of
# float32), not DRAM.
_BLOCK_ELEMENTS = 16384
_MAX_BLOCK = 256
# Rows per parallel task: buffers are allocated once per task.
_ROWS_PER_TASK = 1024

# |z| <= max is false exactly for NaN and +-inf (the float64 kernels' finiteness test).
_FLOAT64_MAX = 1.7976931348623157e308


# Bit patterns for the vectorisable logarithm below.
_MANTISSA_BITS = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000  # 1.0
_TWO52_BITS = 0x4330000000000000  # 2**52
_TWO52_PLUS_BIAS = 4503599627371519.0  # 2**52 + 1023
_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453
_SMALLEST_NORMAL = 2.2250738585072014e-308


@njit(cache=True)
def _block_rows(n_members, n_classes):
    return max(1, min(_MAX_BLOCK, _BLOCK_ELEMENTS // max(1, n_members * n_classes)))


# error_model="numpy": no ZeroDivisionError check on "/", which would stop LLVM from
# vectorising the loops.
@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _xlogx(values, n, mantissas, exponents):
    """values[k] <- values[k] * log(values[k]) for k < n; 0 where values[k] < 2.2e-308.

    Numba calls libm's scalar ``log`` (no vector math library is assumed), which costs
    several ns per element; this version vectorises. x = 2**e * m with m in [1, 2) is split
    with integer masks (the exponent is read as a double by planting it in the mantissa of
    2**52), m is folded into [sqrt(1/2), sqrt(2)), and log m = 2 atanh(s), s = (m-1)/(m+1),
    |s| <= 0.172, by its odd series to s**15: relative error below 1e-13. Subnormal and
    non-positive values contribute 0 (|x log x| < 2e-305 there). ``mantissas`` and
    ``exponents`` are float64 scratch buffers of at least n elements.
    """
    bits = values.view(np.int64)
    mantissa_bits = mantissas.view(np.int64)
    exponent_bits = exponents.view(np.int64)
    for k in range(n):
        b = bits[k]
        mantissa_bits[k] = (b & _MANTISSA_BITS) | _ONE_BITS
        exponent_bits[k] = ((b >> 52) & 0x7FF) | _TWO52_BITS
    for k in range(n):
        x = values[k]
        m = mantissas[k]
        e = exponents[k] - _TWO52_PLUS_BIAS
        fold = m > _SQRT2
        m = m * 0.5 if fold else m
        e = e + 1.0 if fold else e
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        series = 1.0 / 15.0
        series = series * s2 + 1.0 / 13.0
        series = series * s2 + 1.0 / 11.0
        series = series * s2 + 1.0 / 9.0
        series = series * s2 + 1.0 / 7.0
        series = series * s2 + 1.0 / 5.0
        series = series * s2 + 1.0 / 3.0
        series = series * s2 + 1.0
        values[k] = x * (e * _LN2 + 2.0 * s * series) if x >= _SMALLEST_NORMAL else 0.0


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _committee_scores_tasks(members, codes, from_logits, atol, out, task_lo, task_hi):
    """Disagreement measures of a committee, members (M, rows, C), M >= 1, C >= 2.

    For each row, with p_m the distribution of member m (the softmax of its logits when
    ``from_logits``) and q = mean_m p_m:

    - VOTE_ENTROPY: entropy of the histogram of argmax_j p_mj (first maximum on ties);
    - CONSENSUS_ENTROPY: H(q);
    - BALD: H(q) - mean_m H(p_m) = mean_m KL(p_m || q), clamped at 0;
    - KL_MAX: max_m KL(p_m || q), clamped at 0;
    - VARIATION_RATIO: 1 - (votes for the modal class) / M;
    - CONSENSUS_MARGIN: 1 - (q_(1) - q_(2)).

    Entries p <= 0 contribute 0 to entropies and divergences (0 log 0 = 0). Probability
    rows are valid when they sum to 1 within ``atol`` (false for NaN/inf) and no entry is
    below ``-atol``; logit rows when every entry is finite. Returns the number of rows
    with an invalid member row; those rows get NaN in every output.

    Layout: rows are processed in blocks; each member's block is transposed to (C, block)
    so that the loops over classes run across rows and vectorise (running sums, minima,
    a branch-free argmax, the vectorised p log p). Every row's arithmetic is the same
    whatever the block or chunk it falls in, so results do not depend on chunking.
    """
    n_members, n, c = members.shape
    n_codes = codes.shape[0]
    need_kl = False
    need_member_entropy = False  # only BALD and KL-max need the members' own entropies
    for k in range(n_codes):
        if codes[k] == KL_MAX:
            need_kl = True
        if codes[k] == KL_MAX or codes[k] == BALD:
            need_member_entropy = True
    block = _block_rows(n_members, c)
    blocks_per_task = max(1, _ROWS_PER_TASK // block)
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + blocks_per_task - 1) // blocks_per_task
    inv_members = 1.0 / n_members
    # -f log f for every possible vote fraction f = k / M: vote entropy is a table lookup.
    vote_terms = np.zeros(n_members + 1, dtype=np.float64)
    for k in range(1, n_members + 1):
        f = k * inv_members
        vote_terms[k] = -f * np.log(f)
    n_bad = 0
    for task in range(task_lo, task_hi):
        columns = np.empty(c * block, dtype=np.float64)  # one member's block, (C, block)
        mean = np.empty(c * block, dtype=np.float64)  # sum, then mean, of p: (C, block)
        log_mean = np.empty(c * block, dtype=np.float64)
        scratch_a = np.empty(c * block, dtype=np.float64)
        scratch_b = np.empty(c * block, dtype=np.float64)
        counts = np.empty(c * block, dtype=np.int64)  # votes per class: (C, block)
        total = np.empty(block, dtype=np.float64)
        lowest = np.empty(block, dtype=np.float64)
        top = np.empty(block, dtype=np.float64)
        vote = np.empty(block, dtype=np.int64)
        entropy = np.empty(block, dtype=np.float64)
        entropy_sum = np.empty(block, dtype=np.float64)
        bad = np.empty(block, dtype=np.bool_)
        member_entropy = np.empty((n_members, block), dtype=np.float64)
        shift = np.empty((n_members, block), dtype=np.float64)
        kl_max = np.empty(block, dtype=np.float64)
        consensus = np.empty(block, dtype=np.float64)
        top1 = np.empty(block, dtype=np.float64)
        top2 = np.empty(block, dtype=np.float64)
        exps = np.empty(c, dtype=np.float64)
        block_stop = min(n_blocks, (task + 1) * blocks_per_task)
        for blk in range(task * blocks_per_task, block_stop):
            lo = blk * block
            rows = min(n, lo + block) - lo
            for r in range(rows):
                entropy_sum[r] = 0.0
                bad[r] = False
                kl_max[r] = 0.0
            for k in range(c * block):
                mean[k] = 0.0
                counts[k] = 0
            # Pass 1, member by member (each member's block is read contiguously):
            # validity, votes, the sum of p and the members' entropies.
            for m in range(n_members):
                if from_logits:
                    for r in range(rows):
                        i = lo + r
                        t_max = -np.inf
                        best = 0
                        check = 0.0
                        for j in range(c):
                            z = members[m, i, j]
                            check += 0.0 if abs(z) <= _FLOAT64_MAX else 1.0  # NaN, inf fail
                            if z > t_max:  # strict: the lowest class wins a tie
                                t_max = z
                                best = j
                        if not (check == 0.0):
                            bad[r] = True
                            continue
                        # float64 differences: z - max(z) cannot overflow for float32.
                        top64 = np.float64(t_max)
                        s = 0.0
                        w = 0.0
                        for j in range(c):
                            t = np.float64(members[m, i, j]) - top64
                            e = np.exp(t)
                            exps[j] = e
                            s += e
                            if e > 0.0:
                                w += e * t
                        log_s = np.log(s)
                        h = log_s - w / s
                        inv_s = 1.0 / s
                        for j in range(c):
                            mean[j * block + r] += exps[j] * inv_s
                        shift[m, r] = top64 + log_s  # log p_mj = z_mj - shift
                        entropy_sum[r] += h
                        member_entropy[m, r] = h
                        counts[best * block + r] += 1
                    continue
                for r in range(rows):
                    for j in range(c):
                        columns[j * block + r] = members[m, lo + r, j]
                for r in range(rows):
                    total[r] = 0.0
                    lowest[r] = np.inf
                    top[r] = -np.inf
                    vote[r] = 0
                for j in range(c):
                    for r in range(rows):
                        p = columns[j * block + r]
                        total[r] += p
                        lowest[r] = min(lowest[r], p)
                        vote[r] = j if p > top[r] else vote[r]  # strict: lowest class on ties
                        top[r] = max(top[r], p)
                        mean[j * block + r] += p
                if need_member_entropy:
                    _xlogx(columns, c * block, scratch_a, scratch_b)
                    for r in range(rows):
                        entropy[r] = 0.0
                    for j in range(c):
                        for r in range(rows):
                            entropy[r] -= columns[j * block + r]
                for r in range(rows):
                    if not (lowest[r] >= -atol and abs(total[r] - 1.0) <= atol):
                        bad[r] = True
                        continue
                    counts[vote[r] * block + r] += 1
                    if need_member_entropy:
                        entropy_sum[r] += entropy[r]
                        member_entropy[m, r] = entropy[r]
            # The consensus q, its entropy, its top two and log q (for KL-max).
            for k in range(c * block):
                mean[k] *= inv_members
                log_mean[k] = mean[k]
            _xlogx(log_mean, c * block, scratch_a, scratch_b)  # q log q
            for r in range(rows):
                consensus[r] = 0.0
                top1[r] = -np.inf
                top2[r] = -np.inf
            for j in range(c):
                for r in range(rows):
                    q = mean[j * block + r]
                    consensus[r] -= log_mean[j * block + r]
                    top2[r] = max(top2[r], min(top1[r], q))
                    top1[r] = max(top1[r], q)
            if need_kl:
                for k in range(c * block):
                    q = mean[k]
                    # log q = (q log q) / q; 0 where q underflows (only read where p > 0)
                    log_mean[k] = log_mean[k] / q if q >= _SMALLEST_NORMAL else 0.0
                # Pass 2: KL(p_m || q) needs q, so each member's block is read again, from
                # cache. For logits log p_mj = z_mj - shift, so no logarithm is needed.
                for m in range(n_members):
                    for r in range(rows):
                        if bad[r]:
                            continue
                        i = lo + r
                        kl = 0.0
                        if from_logits:
                            sh = shift[m, r]
                            for j in range(c):
                                lp = np.float64(members[m, i, j]) - sh
                                p = np.exp(lp)
                                if p > 0.0:
                                    kl += p * (lp - log_mean[j * block + r])
                        else:
                            cross = 0.0
                            for j in range(c):
                                p = max(np.float64(members[m, i, j]), 0.0)
                                cross += p * log_mean[j * block + r]
                            kl = -member_entropy[m, r] - cross
                        kl_max[r] = max(kl_max[r], kl)
            for r in range(rows):
                i = lo + r
                if bad[r]:
                    for k in range(n_codes):
                        out[k, i] = np.nan
                    n_bad += 1
                    continue
                vote_entropy = 0.0
                modal = 0
                for j in range(c):
                    count = counts[j * block + r]
                    vote_entropy += vote_terms[count]
                    modal = max(modal, count)
                for k in range(n_codes):
                    code = codes[k]
                    if code == VOTE_ENTROPY:
                        out[k, i] = vote_entropy
                    elif code == CONSENSUS_ENTROPY:
                        out[k, i] = consensus[r]
                    elif code == BALD:
                        out[k, i] = max(consensus[r] - entropy_sum[r] * inv_members, 0.0)
                    elif code == KL_MAX:
                        out[k, i] = kl_max[r]
                    elif code == VARIATION_RATIO:
                        out[k, i] = 1.0 - modal * inv_members
                    else:
                        out[k, i] = 1.0 - (top1[r] - top2[r])
    return n_bad


def _committee_scores(members, codes, from_logits, atol, out):
    """``_committee_scores_tasks`` over every task, on Numba's thread count (``_parallel``)."""
    block = _block_rows(members.shape[0], members.shape[2])
    blocks_per_task = max(1, _ROWS_PER_TASK // block)
    n_tasks = -(-(-(-members.shape[1] // block)) // blocks_per_task)
    return run_tasks(_committee_scores_tasks, n_tasks, members, codes, from_logits, atol, out)


def block_rows32(n_members, n_classes):
    """Rows per block of ``_committee_probs32``: one member's block (C * rows float32) is
    about 8 KiB, so the M blocks re-read by KL-max stay in L2. Results do not depend on it."""
    return int(min(512, max(16, 2048 // max(1, n_classes))))


@njit(**HELPER)
def _member_blocks(flat, n_members, c, member_stride, row_stride, lo, rows, block, copies,
                   bases):
    """Each member's block as ``source[bases[m]:bases[m] + rows * c]``; returns source.

    In place (``flat``) when the members' rows are adjacent, else copied once per block
    into ``copies`` (then re-read from L2).
    """
    if row_stride == c:
        for m in range(n_members):
            bases[m] = m * member_stride + lo * c
        return flat
    for m in range(n_members):
        bases[m] = m * block * c
        start = m * member_stride + lo * row_stride
        for r in range(rows):
            row = flat[start + r * row_stride:start + r * row_stride + c]
            for j in range(c):
                copies[bases[m] + r * c + j] = row[j]
    return copies


@njit(**HELPER)
def _sum_and_min(source, bases, n_members, rows, c, low_limit, mean, lowest, bad):
    """mean[k] = sum of the members' p, lowest[k] = their minimum, over the block's entries;
    then flag the rows where some member has an entry below -atol (or NaN) in ``bad``.

    Four members per pass over the buffers: one read-modify-write of mean and lowest per
    four members was measured 1.6x faster than one per member when streaming from DRAM.
    The order of the additions depends only on M. The buffers start at 0 and +inf (0 + x
    is x, min(inf, x) is x): one loop per group size, not two (compile time).
    """
    inf = np.float32(np.inf)
    zero = np.float32(0.0)
    size = rows * c
    for k in range(size):
        mean[k] = zero
        lowest[k] = inf
    m = 0
    while m < n_members:
        s0 = source[bases[m]:bases[m] + size]
        if m + 4 <= n_members:
            s1 = source[bases[m + 1]:bases[m + 1] + size]
            s2 = source[bases[m + 2]:bases[m + 2] + size]
            s3 = source[bases[m + 3]:bases[m + 3] + size]
            for k in range(size):
                a = s0[k]
                b = s1[k]
                d = s2[k]
                e = s3[k]
                mean[k] += (a + b) + (d + e)
                x = a if a < b else b  # select-style minima vectorise
                y = d if d < e else e
                x = x if x < y else y
                low = lowest[k]
                lowest[k] = low if low < x else x
            m += 4
        else:
            for k in range(size):
                p = s0[k]
                mean[k] += p
                low = lowest[k]
                lowest[k] = low if low < p else p
            m += 1
    for r in range(rows):
        low = lowest[r * c]
        for j in range(1, c):
            p = lowest[r * c + j]
            low = low if low < p else p
        if not (low >= low_limit):
            bad[r] = True


@njit(**HELPER)
def _check_sums_and_vote(source, bases, n_members, rows, c, atol32, votes, bad, counts):
    """Flag rows whose member rows do not sum to 1 (or hold NaN/inf); count each member's vote.

    Row by row, every member's row in turn: short loops over C do not vectorise, and the
    members' sums are independent chains the CPU overlaps. A vote goes to the lowest class
    among tied maxima.
    """
    one = np.float32(1.0)
    for r in range(rows):
        base = r * c
        for m in range(n_members):
            first = bases[m] + base
            b = source[first]
            t = b
            v = 0
            for j in range(1, c):
                p = source[first + j]
                t += p
                if votes is not None:
                    better = p > b  # strict: the lowest class wins a tie
                    v = j if better else v  # selects, not branches: the argmax of
                    b = p if better else b  # noisy rows is random
            # false for NaN, and for inf (the sum is then inf or NaN)
            if not (abs(t - one) <= atol32):
                bad[r] = True
            if votes is not None:
                counts[base + v] += 1


@njit(**HELPER)
def _member_entropies(source, bases, n_members, rows, c, terms4, member_entropy, entropy_sum):
    """H(p_m) of every member row, and their sum per row.

    p log p over the block with the vectorised log32 (log32 needs a normal positive input;
    x = 1 adds 0; rows with NaN/inf are already bad, whatever the log returns), then the
    row sums in float64: four members' terms per pass over the block, then each row's
    members in turn (one reduction loop to compile; the CPU overlaps the members' chains).
    """
    tiny = np.float32(1.1754944e-38)
    one = np.float32(1.0)
    size = rows * c
    m = 0
    while m < n_members:
        group = 4 if m + 4 <= n_members else 1
        for g in range(group):
            src = source[bases[m + g]:bases[m + g] + size]
            member_terms = terms4[g]
            for k in range(size):
                p = src[k]
                x = p if p > tiny else one
                member_terms[k] = x * log32(x)
        for r in range(rows):
            for g in range(group):
                h = 0.0
                for j in range(c):
                    h -= np.float64(terms4[g, r * c + j])
                member_entropy[m + g, r] = h
                entropy_sum[r] += h
        m += group


@njit(**HELPER)
def _consensus_entropy(mean, log_mean, rows, c, terms, consensus):
    """H(q) per row from q and log q (terms where q underflows count 0)."""
    tiny = np.float32(1.1754944e-38)
    zero = np.float32(0.0)
    for k in range(rows * c):
        q = mean[k]
        terms[k] = (q if q > tiny else zero) * log_mean[k]
    for r in range(rows):
        h = 0.0
        for j in range(c):
            h -= np.float64(terms[r * c + j])
        consensus[r] = h


@njit(**HELPER)
def _top2_rows(mean, rows, c, top1, top2):
    """The largest and second largest q of each row."""
    for r in range(rows):
        a = -np.inf
        b = -np.inf
        for j in range(c):
            q = mean[r * c + j]
            smaller = a if a < q else q
            b = b if b > smaller else smaller
            a = a if a > q else q
        top1[r] = a
        top2[r] = b


@njit(**HELPER)
def _kl_max_rows(source, bases, n_members, rows, c, log_mean, member_entropy, terms, kl_max):
    """max_m KL(p_m || q) = max_m (-H(p_m) - sum_j p_mj log q_j); blocks re-read from L2."""
    tiny = np.float32(1.1754944e-38)
    zero = np.float32(0.0)
    size = rows * c
    for r in range(rows):
        kl_max[r] = 0.0
    for m in range(n_members):
        src = source[bases[m]:bases[m] + size]
        for k in range(size):
            p = src[k]
            terms[k] = (p if p > tiny else zero) * log_mean[k]
        for r in range(rows):
            cross = 0.0
            for j in range(c):
                cross += np.float64(terms[r * c + j])
            kl = -member_entropy[m, r] - cross
            best = kl_max[r]
            kl_max[r] = best if best > kl else kl


@njit(**HELPER)
def _vote_rows(counts, rows, c, vote_terms, vote_entropy, modal):
    """Vote entropy (from the table of -f log f) and the modal vote count of each row."""
    for r in range(rows):
        h = 0.0
        most = 0
        for j in range(c):
            count = counts[r * c + j]
            h += vote_terms[count]
            most = most if most > count else count
        vote_entropy[r] = h
        modal[r] = most


@njit(**HELPER)
def _write_codes(codes, rows, inv_members, bad, vote_entropy, consensus, entropy_sum,
                 kl_max, modal, top1, top2, votes, member_h, consensus_h, margin, kl, out):
    """out[k, :rows] = measure codes[k] of each row, NaN for bad rows.

    The flags are the kernel's (``_needs``): a measure's branch is pruned before compilation
    when its flag is None, so a call compiles the loops of its own measures only.
    """
    for k in range(codes.shape[0]):
        code = codes[k]
        target = out[k]
        if votes is not None and code == VOTE_ENTROPY:
            for r in range(rows):
                target[r] = np.nan if bad[r] else vote_entropy[r]
        elif votes is not None and code == VARIATION_RATIO:
            for r in range(rows):
                target[r] = np.nan if bad[r] else 1.0 - modal[r] * inv_members
        elif consensus_h is not None and code == CONSENSUS_ENTROPY:
            for r in range(rows):
                target[r] = np.nan if bad[r] else consensus[r]
        elif consensus_h is not None and member_h is not None and code == BALD:
            for r in range(rows):
                value = consensus[r] - entropy_sum[r] * inv_members
                value = 0.0 if 0.0 > value else value  # max(value, 0.0), NaN kept
                target[r] = np.nan if bad[r] else value
        elif kl is not None and code == KL_MAX:
            for r in range(rows):
                target[r] = np.nan if bad[r] else kl_max[r]
        elif margin is not None and code == CONSENSUS_MARGIN:
            for r in range(rows):
                value = 1.0 - (np.float64(top1[r]) - np.float64(top2[r]))
                target[r] = np.nan if bad[r] else value


@njit(**HELPER)
def _fill_vote_terms(vote_terms, n_members):
    """vote_terms[k] = -f log f for each vote fraction f = k / M (0 for k = 0): vote
    entropy is then a table lookup."""
    inv_members = 1.0 / n_members
    vote_terms[0] = 0.0
    for k in range(1, n_members + 1):
        f = k * inv_members
        vote_terms[k] = -f * np.log(f)


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _committee_probs32_tasks(flat, n_members, n_rows, n_classes, member_stride, row_stride,
                             codes, atol, block, out, votes, member_h, consensus_h, log_q,
                             margin, kl, vote_terms, copies, bases, floats, terms4, counts,
                             doubles, member_entropy, bad, modal, task_lo, task_hi):
    """``_committee_scores`` for float32 probabilities, with vectorised float32 logarithms.

    The committee is given as a 1-D contiguous float32 array ``flat`` and element strides:
    p_m[r, j] = flat[m * member_stride + r * row_stride + j]. (A 3-D view that is a slice
    of a larger array has Numba layout 'A', whose loads do not vectorise; the driver passes
    the memory it spans as one contiguous 1-D view instead.)

    Same measures, validity rule, NaN rows and return value as ``_committee_scores``; only
    the work the requested ``codes`` need is done (no logarithm at all for vote entropy,
    variation ratio or consensus margin, no per-member logarithm for consensus entropy),
    while the validity checks always read every entry of every member row.

    Layout: rows are processed in blocks; a member's block is a contiguous run of
    rows * C floats (copied into one when row_stride != C). Element-wise work (the running
    sum and minimum of p, p log p, log q) runs over that whole run with unit stride and
    vectorises; no transpose is needed. Per-row work (sums, argmax) is a short loop over C
    that does not vectorise, run for every member's row in turn (independent dependency
    chains, which the CPU overlaps). The consensus sum takes four members per pass, so its
    buffer is read and written once per four members (measured 1.6x faster when streaming
    from DRAM). Buffers are indexed from 0 by ``range`` loops: an index LLVM cannot prove
    non-negative (``a[lo + r]``) gets Numba's wraparound and turns vector loads into
    gathers (measured 8x slower on a plain sum).

    Precision: each p log p (or p log q) term is a float32 product with log32 (relative
    error below 3e-7); the sums over classes and members are float64. The entropies and
    divergences are therefore within about 3e-7 * (H + |cross entropy|) of the float64
    formula, an error that does not grow with C or M. q is the float32 mean (relative error
    below M * 6e-8). The member sum in the validity check is float32 (a row within ~1e-6
    of the tolerance may be judged either way). Every row's arithmetic is the same
    whatever its block, chunk, the thread count or the other measures requested.

    What the codes need is given twice: by ``codes`` (what to write) and by six flags, each
    True or None (``_needs``): votes, member entropies, consensus entropy, log q, margin,
    KL-max. A None flag's branches are pruned by type before compilation, so a call
    compiles only the helpers its measures use (one specialisation per set of flags; a
    single measure compiles in about half the time of all six).
    """
    # Buffers of one dtype are rows of one scratch array: every array argument adds to the
    # kernel's CPython wrapper (compiled in each fresh process).
    mean = floats[0]
    lowest = floats[1]
    log_mean = floats[2]
    terms = floats[3]
    top1 = floats[4]
    top2 = floats[5]
    entropy_sum = doubles[0]
    consensus = doubles[1]
    kl_max = doubles[2]
    vote_entropy = doubles[3]
    c = n_classes
    tiny = np.float32(1.1754944e-38)  # smallest normal float32: log32's domain starts here
    one = np.float32(1.0)
    low_limit = np.float32(-atol)
    atol32 = np.float32(atol)
    inv_members32 = np.float32(1.0 / n_members)
    inv_members = 1.0 / n_members
    if votes is not None:
        _fill_vote_terms(vote_terms, n_members)
    n_blocks = (n_rows + block - 1) // block
    # Selects, not the builtins min/max: each of their signatures is one more function to
    # compile in a fresh process.
    blocks_per_task = _ROWS_PER_TASK // block
    blocks_per_task = blocks_per_task if blocks_per_task > 1 else 1
    n_bad = 0
    for task in range(task_lo, task_hi):
        block_stop = (task + 1) * blocks_per_task
        block_stop = block_stop if block_stop < n_blocks else n_blocks
        for blk in range(task * blocks_per_task, block_stop):
            lo = blk * block
            rows = block if lo + block < n_rows else n_rows - lo
            size = rows * c
            for r in range(rows):
                bad[r] = False
                entropy_sum[r] = 0.0
            if votes is not None:
                for k in range(size):
                    counts[k] = 0
            source = _member_blocks(flat, n_members, c, member_stride, row_stride, lo, rows,
                                    block, copies, bases)
            _sum_and_min(source, bases, n_members, rows, c, low_limit, mean, lowest, bad)
            _check_sums_and_vote(source, bases, n_members, rows, c, atol32, votes, bad,
                                 counts)
            if member_h is not None:
                _member_entropies(source, bases, n_members, rows, c, terms4, member_entropy,
                                  entropy_sum)
            for k in range(size):
                mean[k] *= inv_members32
            if log_q is not None:
                # log q, 0 where q underflows: there every p is below M * 1.2e-38 and
                # p log q is below 1e-34.
                for k in range(size):
                    q = mean[k]
                    log_mean[k] = log32(q if q > tiny else one)
            if consensus_h is not None:
                _consensus_entropy(mean, log_mean, rows, c, terms, consensus)
            if margin is not None:
                _top2_rows(mean, rows, c, top1, top2)
            if kl is not None:
                _kl_max_rows(source, bases, n_members, rows, c, log_mean, member_entropy,
                             terms, kl_max)
            if votes is not None:
                _vote_rows(counts, rows, c, vote_terms, vote_entropy, modal)
            _write_codes(codes, rows, inv_members, bad, vote_entropy, consensus, entropy_sum,
                         kl_max, modal, top1, top2, votes, member_h, consensus_h, margin, kl,
                         out[:, lo:lo + rows])
            for r in range(rows):
                if bad[r]:
                    n_bad += 1
    return n_bad


def _needs(codes):
    """The six flags of ``_committee_probs32_tasks`` for these codes: True where a measure
    needs the work, None where not (None branches are pruned before compilation)."""
    codes = set(int(code) for code in codes)
    votes = bool(codes & {VOTE_ENTROPY, VARIATION_RATIO})
    member_h = bool(codes & {BALD, KL_MAX})
    consensus_h = bool(codes & {CONSENSUS_ENTROPY, BALD})
    kl = KL_MAX in codes
    margin = CONSENSUS_MARGIN in codes
    flags = (votes, member_h, consensus_h, consensus_h or kl, margin, kl)
    return tuple(True if flag else None for flag in flags)


def _committee_probs32(flat, n_members, n_rows, n_classes, member_stride, row_stride, codes,
                       atol, block, out):
    """``_committee_probs32_tasks`` over every task, on Numba's thread count (``_parallel``)."""
    blocks_per_task = max(1, _ROWS_PER_TASK // block)
    n_tasks = -(-(-(-n_rows // block)) // blocks_per_task)
    needs = _needs(codes)
    votes, member_h, _, _, _, _ = needs
    c = n_classes

    def make():  # see _committee_probs32_tasks
        f32, f64 = np.float32, np.float64
        return (np.empty(n_members + 1, f64),
                np.empty(1 if row_stride == c else n_members * block * c, f32),
                np.empty(n_members, np.int64), np.empty((6, block * c), f32),
                np.empty((4 if member_h else 1, block * c), f32),
                np.zeros(block * c if votes else 1, np.int32), np.empty((4, block), f64),
                np.empty((n_members, block), f64), np.empty(block, np.bool_),
                np.empty(block, np.int32))

    return run_tasks(_committee_probs32_tasks, n_tasks, flat, n_members, n_rows, n_classes,
                     member_stride, row_stride, codes, atol, block, out, *needs,
                     scratch=(("probs32", n_members, c, block, row_stride == c, needs), make))

def block_rows_logits32(n_classes):
    """Rows per block of ``_committee_logits32``: a power of two near 4096 / C between 64 and
    256 (measured at C = 10 and 100: blocks of 16-32 rows at C = 100 ran 1.3x slower, the
    loops across rows being too short). Results do not depend on it."""
    target = max(1, 4096 // max(n_classes, 1))
    return int(min(256, max(64, 1 << (target.bit_length() - 1))))


@njit(**HELPER)
def _member_tile(flat, base, row_stride, rows, c, z):
    """z[j, r] = flat[base + r * row_stride + j]: one member's block of logits as (C, rows)."""
    for r in range(rows):
        row = flat[base + r * row_stride:base + r * row_stride + c]
        for j in range(c):
            z[j, r] = row[j]


@njit(**HELPER)
def _member_max_vote(z, w, rows, c, lane_top, lane_best, check, votes, best, lane_max):
    """A member's row max, and with ``votes`` its argmax (lowest class on ties), from its
    (C / w, w * rows) tile of logits: first per lane across the tile (check[k] gains z * 0
    per entry: it stays 0 only if the lane is finite, NaN for NaN and +-inf), then each
    row's w lanes merged, the row max written back to every lane of the row (the softmax's
    shift) and the row's argmax class into best[r]. The lanes' argmax is kept even without
    vote measures: skipping it was measured slower.

    One helper for both steps: each compiled helper costs ~0.05 s in a fresh process.
    Lane h of unit j holds class w * j + h; each lane's argmax is its lowest unit among
    tied maxima, so taking the largest lane value, and on a tie the lower class, gives the
    lowest class among the row's maxima, as a plain scan would.
    """
    zero = np.float32(0.0)
    lanes = w * rows
    for k in range(lanes):
        v = z[0, k]
        lane_top[k] = v
        lane_best[k] = 0
        check[k] += v * zero
    j = 1
    while j + 1 < c:  # two classes per pass: half the accumulators' loads and stores
        for k in range(lanes):
            v = z[j, k]
            u = z[j + 1, k]
            check[k] += v * zero + u * zero
            t = lane_top[k]
            b = lane_best[k]
            b = j if v > t else b  # strict: the lowest class wins a tie
            t = t if t > v else v
            lane_best[k] = j + 1 if u > t else b
            lane_top[k] = t if t > u else u
        j += 2
    if j < c:
        for k in range(lanes):
            v = z[j, k]
            check[k] += v * zero
            t = lane_top[k]
            lane_best[k] = j if v > t else lane_best[k]
            lane_top[k] = t if t > v else v
    for r in range(rows):
        q = w * r
        t = lane_top[q]
        for h in range(1, w):
            v = lane_top[q + h]
            t = t if t > v else v
        for h in range(w):
            lane_max[q + h] = t
    if votes is not None:
        for r in range(rows):
            q = w * r
            t = lane_top[q]
            b = w * lane_best[q]
            for h in range(1, w):
                v = lane_top[q + h]
                k = w * lane_best[q + h] + h
                take = (v > t) | ((v == t) & (k < b))
                t = v if take else t
                b = k if take else b
            best[r] = b


@njit(**HELPER)
def _member_softmax(z, w, rows, c, lane_max, lane_total, lane_weighted, total, weighted, inv,
                    q, first, kept, m, member_entropy, entropy_sum, member_h):
    """A member's softmax from its (C / w, w * rows) tile, added into the consensus q.

    z[j, k] <- e^(z - max) (clamped at -87.33: 1.2e-38 next to a sum >= 1), with each
    lane's sum (and with member_h sum_j e_j t_j); the row sums total[r] from the row's w
    lanes (float32, lanes in order), written back to every lane of the row; with member_h
    the member's entropy H(p_m) = log s - (sum_j e_j t_j) / s per row (s >= 1, so log32
    applies; no per-entry logarithm), clamped at 0, into member_entropy[m] and entropy_sum;
    then p = e / s into q (q = p for the first member, else q += p), and into ``kept`` (a
    (C / w, w * rows) tile, or None) for KL-max. One helper for these steps: each compiled
    helper costs ~0.05 s in a fresh process.
    """
    zero = np.float32(0.0)
    one = np.float32(1.0)
    lanes = w * rows
    for k in range(lanes):
        lane_total[k] = zero
    if member_h is not None:
        for k in range(lanes):
            lane_weighted[k] = zero
    for j in range(c):
        for k in range(lanes):
            t = z[j, k] - lane_max[k]
            t = t if t > _EXP_LOWEST else _EXP_LOWEST  # z - max may overflow to -inf
            e = exp32_in_range(t)
            z[j, k] = e
            lane_total[k] += e
            if member_h is not None:
                lane_weighted[k] += e * t
    for r in range(rows):
        a = lane_total[w * r]
        for h in range(1, w):
            a += lane_total[w * r + h]
        total[r] = a
    for r in range(rows):
        for h in range(w):
            lane_total[w * r + h] = total[r]
    if member_h is not None:
        for r in range(rows):
            a = lane_weighted[w * r]
            for h in range(1, w):
                a += lane_weighted[w * r + h]
            weighted[r] = a
        for r in range(rows):
            s = np.float64(total[r])
            h = np.float64(log32(total[r])) - np.float64(weighted[r]) / s
            h = h if h > 0.0 else 0.0
            member_entropy[m, r] = h
            entropy_sum[r] += h
    for k in range(lanes):
        inv[k] = one / lane_total[k]
    for j in range(c):
        for k in range(lanes):
            p = z[j, k] * inv[k]
            q[j, k] = p if first else q[j, k] + p
            if kept is not None:
                kept[j, k] = p


@njit(**HELPER)
def _logq_rows(q, rows, c, inv_members, log_q, consensus, consensus_h):
    """q <- q / M; log q (0 where q underflows); with consensus_h, H(q) per row."""
    tiny = np.float32(1.1754944e-38)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for j in range(c):
        for r in range(rows):
            v = q[j, r] * inv_members
            q[j, r] = v
            log_q[j, r] = log32(v if v > tiny else one)
    if consensus_h is not None:
        for r in range(rows):
            consensus[r] = 0.0
        for j in range(c):
            for r in range(rows):
                v = q[j, r]
                consensus[r] -= np.float64((v if v > tiny else zero) * log_q[j, r])


@njit(**HELPER)
def _tile_top2(q, rows, c, top1, top2):
    """The largest and second largest q of each row of a (C, rows) tile, across rows."""
    for r in range(rows):
        top1[r] = -np.inf
        top2[r] = -np.inf
    for j in range(c):
        for r in range(rows):
            v = q[j, r]
            a = top1[r]
            smaller = a if a < v else v
            b = top2[r]
            top2[r] = b if b > smaller else smaller
            top1[r] = a if a > v else v


@njit(**HELPER)
def _merge_lane_sums(lane_sums, w, rows, sums):
    """sums[r] = the sum of row r's w lanes (in the lanes' dtype, lanes in order)."""
    for r in range(rows):
        q = w * r
        a = lane_sums[q]
        for h in range(1, w):
            a += lane_sums[q + h]
        sums[r] = a


@njit(**HELPER)
def _merge_top2_lanes(lane_top1, lane_top2, w, rows, top1, top2):
    """The largest and second largest of each row from its lanes' top two."""
    for r in range(rows):
        q = w * r
        t1 = lane_top1[q]
        t2 = lane_top2[q]
        for h in range(1, w):
            b1 = lane_top1[q + h]
            b2 = lane_top2[q + h]
            smaller = t1 if t1 < b1 else b1
            t1 = t1 if t1 > b1 else b1
            t2 = t2 if t2 > b2 else b2
            t2 = t2 if t2 > smaller else smaller
        top1[r] = t1
        top2[r] = t2


@njit(**HELPER)
def _tile_kl_max(kept, n_members, lanes, w, rows, cu, log_q, member_entropy, cross_lanes,
                 cross, kl_max):
    """max_m KL(p_m || q) = max_m (-H(p_m) - sum_j p_mj log q_j), per row (cross entropy
    summed per lane across the tile, then the row's lanes)."""
    for r in range(rows):
        kl_max[r] = 0.0
    for m in range(n_members):
        for k in range(lanes):
            cross_lanes[k] = 0.0
        for j in range(cu):
            for k in range(lanes):
                cross_lanes[k] += np.float64(kept[m, j, k] * log_q[j, k])
        _merge_lane_sums(cross_lanes, w, rows, cross)
        for r in range(rows):
            kl = -member_entropy[m, r] - cross[r]
            best = kl_max[r]
            kl_max[r] = best if best > kl else kl


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _committee_logits32_tasks(units, n_members, n_rows, n_classes, member_stride, row_stride,
                              codes, block, out, votes, member_h, consensus_h, log_q, margin,
                              kl, vote_terms, tile, z, q, log_qa, kept, counts, floats, doubles,
                              ints, member_entropy, bad, task_lo, task_hi):
    """``_committee_scores`` for float32 logits: the softmax and the measures in one pass.

    ``units`` is the committee's memory (as in ``_committee_probs32``) seen as units of w
    float32 (complex128: w = 4, int64: w = 2, float32: w = 1; ``_logit_units``), strides in
    units: member m's row r is ``units[m * member_stride + r * row_stride:][:C / w]``. Same
    flags (True or None, pruned by type), same measures, NaN rows (a member row with a NaN
    or infinite logit) and return value. Rows go in blocks of ``block``; each member's
    block is transposed once to a (C / w, block) tile of units, which is w float32 lanes
    per row: moving 16-byte units instead of floats makes the transpose, the costliest step
    at C = 100, about 4x cheaper. Everything after runs across the tile's lanes and
    vectorises: each lane's max and argmax, merged per row (the vote: argmax of the
    logits, lowest class on ties, exact whatever float32 does to the probabilities) and
    written back to the lanes; e^(z - max) by ``exp32_in_range`` (max subtraction in
    registers) with per-lane sums, merged per row; p = e / s added into the consensus q
    (element-wise: no merge); the member's entropy from its sums alone, H(p_m) = log s -
    sum_j e_j t_j / s (no logarithm per entry). Then log q once per block, H(q), the top
    two q, KL-max from the members' p kept in cache, the vote counts, each summed per lane
    and then over the row's lanes. No array of the chunk's size is made.

    Precision: e within 2e-7 relative (exp32), p and q float32 (C * 6e-8 from the row
    sum), p log q terms float32 with log32 (3e-7), row sums float64: entropies and
    divergences within about 1e-6 * (1 + H) of the float64 formulas. Every row's arithmetic
    (its lanes, the order of its sums) is the same whatever its block, chunk or thread.
    """
    # The per-lane and per-row buffers (w * block and block values) are rows of one scratch
    # array per dtype: every array argument adds to the kernel's CPython wrapper, which with
    # 48 arguments took ~0.5 s of a first call's compilation.
    lane_top = floats[0]
    lane_max = floats[1]
    check = floats[2]
    lane_total = floats[3]
    lane_weighted = floats[4]
    inv = floats[5]
    lane_top1 = floats[6]
    lane_top2 = floats[7]
    total = floats[8]
    weighted = floats[9]
    top1 = floats[10]
    top2 = floats[11]
    row_check = floats[12]
    lane_sums = doubles[0]
    entropy_sum = doubles[1]
    cross = doubles[2]
    consensus = doubles[3]
    kl_max = doubles[4]
    vote_entropy = doubles[5]
    lane_best = ints[0]
    best = ints[1]
    modal = ints[2]
    c = n_classes
    w = _lanes(units)
    cu = c // w
    inv_members = 1.0 / n_members
    inv_members32 = np.float32(inv_members)
    if votes is not None:
        _fill_vote_terms(vote_terms, n_members)
    n_blocks = (n_rows + block - 1) // block
    # Selects, not the builtins min/max: each of their signatures is one more function to
    # compile in a fresh process.
    blocks_per_task = _ROWS_PER_TASK // block
    blocks_per_task = blocks_per_task if blocks_per_task > 1 else 1
    zero = np.float32(0.0)
    width = w * block  # lanes of a full block
    n_bad = 0
    for task in range(task_lo, task_hi):
        block_stop = (task + 1) * blocks_per_task
        block_stop = block_stop if block_stop < n_blocks else n_blocks
        for blk in range(task * blocks_per_task, block_stop):
            lo = blk * block
            rows = block if lo + block < n_rows else n_rows - lo
            lanes = w * rows
            for k in range(lanes):
                check[k] = zero
            for r in range(rows):
                entropy_sum[r] = 0.0
            if votes is not None:
                for k in range(rows * c):
                    counts[k] = 0
            for m in range(n_members):
                _member_tile(units, m * member_stride + lo * row_stride, row_stride, rows, cu,
                             tile)
                _member_max_vote(z, w, rows, cu, lane_top, lane_best, check, votes, best,
                                 lane_max)
                if votes is not None:
                    for r in range(rows):
                        counts[r * c + best[r]] += 1
                if member_h is not None or consensus_h is not None or margin is not None:
                    _member_softmax(z, w, rows, cu, lane_max, lane_total, lane_weighted, total,
                                    weighted, inv, q, m == 0,
                                    kept[m] if kl is not None else None, m, member_entropy,
                                    entropy_sum, member_h)
            if log_q is not None:
                _logq_rows(q, lanes, cu, inv_members32, log_qa, lane_sums, consensus_h)
                if consensus_h is not None:
                    _merge_lane_sums(lane_sums, w, rows, consensus)
            if margin is not None:
                _tile_top2(q, lanes, cu, lane_top1, lane_top2)
                _merge_top2_lanes(lane_top1, lane_top2, w, rows, top1, top2)
                if log_q is None:  # q is still the members' sum: scale its top two alone
                    for r in range(rows):  # (x -> x / M is monotonic: the same two, bits)
                        top1[r] *= inv_members32
                        top2[r] *= inv_members32
            if kl is not None:
                _tile_kl_max(kept, n_members, lanes, w, rows, cu, log_qa, member_entropy,
                             lane_sums, cross, kl_max)
            if votes is not None:
                _vote_rows(counts, rows, c, vote_terms, vote_entropy, modal)
            for r in range(rows):
                a = check[w * r]
                for h in range(1, w):
                    a += check[w * r + h]
                row_check[r] = a
            for r in range(rows):
                bad[r] = row_check[r] != zero  # NaN != 0: a NaN or infinite logit
            _write_codes(codes, rows, inv_members, bad, vote_entropy, consensus, entropy_sum,
                         kl_max, modal, top1, top2, votes, member_h, consensus_h, margin, kl,
                         out[:, lo:lo + rows])
            for r in range(rows):
                if bad[r]:
                    n_bad += 1
    return n_bad


def _logit_units(flat, n_classes, member_stride, row_stride):
    """(units, w, member_stride / w, row_stride / w): ``flat`` seen as units of w float32
    (complex128 for w = 4, int64 for w = 2) when C and both strides allow, else w = 1. The
    lane count depends on C and the layout only, never on the chunk or the thread."""
    for w, unit in ((4, np.complex128), (2, np.int64)):
        if (n_classes % w == 0 and member_stride % w == 0 and row_stride % w == 0
                and flat.shape[0] % w == 0):
            return flat.view(unit), w, member_stride // w, row_stride // w
    return flat, 1, member_stride, row_stride


def _committee_logits32(flat, n_members, n_rows, n_classes, member_stride, row_stride, codes,
                        out):
    """``_committee_logits32_tasks`` over every task, on Numba's thread count (``_parallel``)."""
    block = block_rows_logits32(n_classes)
    blocks_per_task = max(1, _ROWS_PER_TASK // block)
    n_tasks = -(-(-(-n_rows // block)) // blocks_per_task)
    units, w, member_stride, row_stride = _logit_units(flat, n_classes, member_stride,
                                                       row_stride)
    needs = _needs(codes)
    votes, _, _, log_q, _, kl = needs
    c = n_classes
    cu = c // w
    width = w * block  # lanes of a full block

    def make():  # see _committee_logits32_tasks
        f32, f64, i32 = np.float32, np.float64, np.int32
        tile = np.empty((cu, block), dtype=units.dtype)
        # (C / w, w * block) float32: lane h of row r at column w r + h
        z = tile.view(f32) if w > 1 else tile
        return (np.empty(n_members + 1, f64), tile, z, np.empty((cu, width), f32),
                np.empty((cu if log_q else 1, width), f32),
                np.empty((n_members if kl else 1, cu if kl else 1, width), f32),
                np.zeros(block * c if votes else 1, i32), np.empty((13, width), f32),
                np.empty((6, width), f64), np.empty((3, width), i32),
                np.empty((n_members, block), f64), np.empty(block, np.bool_))

    return run_tasks(_committee_logits32_tasks, n_tasks, units, n_members, n_rows, n_classes,
                     member_stride, row_stride, codes, block, out, *needs,
                     scratch=(("logits32", n_members, c, w, units.dtype.str, block, needs), make))



@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _votes_from_logits_tasks(members, votes, task_lo, task_hi):
    """votes[m, i] = argmax_j members[m, i, j] (lowest class on ties), -1 if not all finite.

    The vote measures need only each member's argmax, and softmax keeps the argmax of the
    logits (the committee's softmax kernel is built to), so they skip the softmax. Returns 0;
    a -1 vote makes ``_vote_scores`` mark the row invalid.
    """
    n_members, n, c = members.shape
    for task in range(task_lo, task_hi):
        for m in range(n_members):
            for i in range(task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)):
                best = members[m, i, 0]
                vote = 0
                ok = abs(best) <= _FLOAT64_MAX
                for j in range(1, c):
                    z = members[m, i, j]
                    ok = ok and abs(z) <= _FLOAT64_MAX  # false for NaN and +-inf
                    better = z > best  # strict: the lowest class wins a tie
                    vote = j if better else vote
                    best = z if better else best
                votes[m, i] = vote if ok else -1
    return 0


def votes_from_logits(members, votes):
    """``_votes_from_logits_tasks`` over every task, on Numba's thread count."""
    n_tasks = -(-members.shape[1] // _ROWS_PER_TASK)
    return run_tasks(_votes_from_logits_tasks, n_tasks, members, votes)


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _vote_scores_tasks(votes, n_classes, codes, out, task_lo, task_hi):
    """Vote entropy / variation ratio from hard votes (M, rows) of any integer dtype.

    Only VOTE_ENTROPY and VARIATION_RATIO codes are meaningful here. A row is valid when
    every label is in [0, n_classes); invalid rows get NaN and are counted. The M votes of
    a row are insertion-sorted in a buffer of M labels and counted as runs, so nothing of
    size n_classes is allocated (labels may be sparse and large).
    """
    n_members, n = votes.shape
    n_codes = codes.shape[0]
    inv_members = 1.0 / n_members
    n_tasks = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    n_bad = 0
    for task in range(task_lo, task_hi):
        labels = np.empty(n_members, dtype=np.int64)
        for i in range(task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)):
            ok = True
            for m in range(n_members):
                label = np.int64(votes[m, i])
                if label < 0 or label >= n_classes:
                    ok = False
                # insertion sort: M is small
                pos = m
                while pos > 0 and labels[pos - 1] > label:
                    labels[pos] = labels[pos - 1]
                    pos -= 1
                labels[pos] = label
            if not ok:
                for k in range(n_codes):
                    out[k, i] = np.nan
                n_bad += 1
                continue
            entropy = 0.0
            modal = 0
            run = 1
            for m in range(1, n_members + 1):
                if m < n_members and labels[m] == labels[m - 1]:
                    run += 1
                    continue
                f = run * inv_members
                entropy -= f * np.log(f)
                modal = max(modal, run)
                run = 1
            for k in range(n_codes):
                if codes[k] == VOTE_ENTROPY:
                    out[k, i] = entropy
                else:
                    out[k, i] = 1.0 - modal * inv_members
    return n_bad


def _vote_scores(votes, n_classes, codes, out):
    """``_vote_scores_tasks`` over every task, on Numba's thread count (``_parallel``)."""
    n_tasks = -(-votes.shape[1] // _ROWS_PER_TASK)
    return run_tasks(_vote_scores_tasks, n_tasks, votes, n_classes, codes, out)


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _committee_std_tasks(values, out, task_lo, task_hi):
    """Population standard deviation (ddof=0) across members of values (M, rows).

    Two passes over each block (mean, then squared deviations) for accuracy. Rows with a
    non-finite value get NaN and are counted in the return value.
    """
    n_members, n = values.shape
    n_tasks = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    inv_members = 1.0 / n_members
    n_bad = 0
    for task in range(task_lo, task_hi):
        lo = task * _ROWS_PER_TASK
        rows = min(n, lo + _ROWS_PER_TASK) - lo
        total = np.zeros(rows, dtype=np.float64)
        check = np.zeros(rows, dtype=np.float64)
        squares = np.zeros(rows, dtype=np.float64)
        for m in range(n_members):
            for r in range(rows):
                v = np.float64(values[m, lo + r])
                total[r] += v
                check[r] += v * 0.0  # stays 0.0 unless some value is NaN or +-inf
        for r in range(rows):
            total[r] *= inv_members
        for m in range(n_members):
            for r in range(rows):
                d = np.float64(values[m, lo + r]) - total[r]
                squares[r] += d * d
        for r in range(rows):
            if check[r] == 0.0 and np.isfinite(squares[r]):
                out[lo + r] = np.sqrt(squares[r] * inv_members)
            else:
                out[lo + r] = np.nan
                n_bad += 1
    return n_bad


def _committee_std(values, out):
    """``_committee_std_tasks`` over every task, on Numba's thread count (``_parallel``)."""
    n_tasks = -(-values.shape[1] // _ROWS_PER_TASK)
    return run_tasks(_committee_std_tasks, n_tasks, values, out)


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", **KERNEL)
def _egl_scores_tasks(features, values, codes, from_logits, include_bias, atol, out, task_lo, task_hi):
    """Expected gradient length of a softmax linear model, closed form.

    ``values`` (rows, C) are probabilities p (or logits with ``from_logits``); ``features``
    (rows, d) the inputs x of the linear layer (d may be 0 when only EGL_BIAS is wanted).
    With g = sum_y p_y ||p - e_y||:

    - EGL: ||x~|| g, with x~ = [x, 1] when ``include_bias`` else x (the Frobenius norm of
      the cross-entropy gradient for label y is ||x~|| ||p - e_y||);
    - EGL_BIAS: g, the expected norm of the gradient w.r.t. the logits (or the bias).

    ||p - e_y||^2 = ||p||^2 - 2 p_y + 1 for y not the argmax a; for y = a it is computed as
    (1 - p_a)^2 + sum_{j != a} p_j^2, which avoids the cancellation near one-hot rows.
    Invalid rows (probabilities as in ``_committee_scores``, non-finite logits or features)
    get NaN and are counted.
    """
    n, c = values.shape
    d = features.shape[1]
    n_codes = codes.shape[0]
    n_tasks = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    n_bad = 0
    for task in range(task_lo, task_hi):
        probs = np.empty(c, dtype=np.float64)
        for i in range(task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)):
            ok = True
            top = -np.inf
            arg = 0
            one_minus_top = 0.0
            if from_logits:
                check = 0.0
                for j in range(c):
                    z = values[i, j]
                    check += 0.0 if abs(z) <= _FLOAT64_MAX else 1.0
                    if z > top:
                        top = z
                        arg = j
                if not (check == 0.0):
                    ok = False
                else:
                    top64 = np.float64(top)
                    s = 0.0
                    for j in range(c):
                        e = np.exp(np.float64(values[i, j]) - top64)
                        probs[j] = e
                        s += e
                    inv_s = 1.0 / s
                    rest = 0.0
                    for j in range(c):
                        probs[j] *= inv_s
                        if j != arg:
                            rest += probs[j]
                    one_minus_top = rest  # = (s - 1) / s without the cancellation
            else:
                total = 0.0
                lowest = np.inf
                for j in range(c):
                    p = np.float64(values[i, j])
                    probs[j] = p
                    total += p
                    lowest = min(lowest, p)
                    if p > top:
                        top = p
                        arg = j
                ok = lowest >= -atol and abs(total - 1.0) <= atol
                one_minus_top = 1.0 - probs[arg]
            norm2 = 0.0
            x_check = 0.0
            for j in range(d):
                x = np.float64(features[i, j])
                x_check += x * 0.0
                norm2 += x * x
            if not ok or not (x_check == 0.0):
                for k in range(n_codes):
                    out[k, i] = np.nan
                n_bad += 1
                continue
            rest2 = 0.0
            for j in range(c):
                if j != arg:
                    rest2 += probs[j] * probs[j]
            p_top = probs[arg]
            sq = p_top * p_top + rest2
            g = p_top * np.sqrt(one_minus_top * one_minus_top + rest2)
            for j in range(c):
                if j != arg:
                    p = probs[j]
                    g += p * np.sqrt(max(sq - 2.0 * p + 1.0, 0.0))
            for k in range(n_codes):
                if codes[k] == EGL:
                    out[k, i] = g * np.sqrt(norm2 + (1.0 if include_bias else 0.0))
                else:
                    out[k, i] = g
    return n_bad


def _egl_scores(features, values, codes, from_logits, include_bias, atol, out):
    """``_egl_scores_tasks`` over every task, on Numba's thread count (``_parallel``)."""
    n_tasks = -(-values.shape[0] // _ROWS_PER_TASK)
    return run_tasks(_egl_scores_tasks, n_tasks, features, values, codes, from_logits,
                     include_bias, atol, out)
