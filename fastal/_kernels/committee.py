"""Committee kernels: disagreement between M members, and expected gradient length.

Plain arrays in, plain arrays out, no validation beyond the checks that must touch every
element. As in ``uncertainty.py``, those checks are fused into the scoring pass: a row with
an invalid member row (non-finite entry, negative probability, sum away from 1) gets NaN
in every requested output and is counted in the return value; the driver turns the count
into a precise error.

Every kernel computes any subset of its measures in one pass over the input. The measures
wanted are given as an int64 array of codes ``codes`` and ``out`` has shape
(len(codes), rows): ``out[k, i]`` is measure ``codes[k]`` of row ``i``. Arithmetic is in
float64 registers whatever the input dtype; ``out`` may be float32 or float64.

Inputs may be strided views (e.g. the (M, rows, C) transpose of a (rows, M*C) GEMM output);
they are only indexed, never reshaped.
"""

import numpy as np
from numba import njit, prange

from .._config import FASTMATH

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


@njit(cache=True)
def _block_rows(n_members, n_classes):
    return max(1, min(_MAX_BLOCK, _BLOCK_ELEMENTS // max(1, n_members * n_classes)))


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _committee_scores(members, codes, from_logits, atol, out):
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
    """
    n_members, n, c = members.shape
    n_codes = codes.shape[0]
    need_kl = False
    for k in range(n_codes):
        if codes[k] == KL_MAX:
            need_kl = True
    block = _block_rows(n_members, c)
    blocks_per_task = max(1, _ROWS_PER_TASK // block)
    n_blocks = (n + block - 1) // block
    n_tasks = (n_blocks + blocks_per_task - 1) // blocks_per_task
    inv_members = 1.0 / n_members
    n_bad = 0
    for task in prange(n_tasks):
        mean = np.empty((block, c), dtype=np.float64)
        log_mean = np.empty((block, c), dtype=np.float64)
        counts = np.empty((block, c), dtype=np.int64)
        entropy_sum = np.empty(block, dtype=np.float64)
        bad = np.empty(block, dtype=np.bool_)
        member_entropy = np.empty((n_members, block), dtype=np.float64)
        shift = np.empty((n_members, block), dtype=np.float64)
        kl_max = np.empty(block, dtype=np.float64)
        exps = np.empty(c, dtype=np.float64)
        block_stop = min(n_blocks, (task + 1) * blocks_per_task)
        for blk in range(task * blocks_per_task, block_stop):
            lo = blk * block
            rows = min(n, lo + block) - lo
            for r in range(rows):
                entropy_sum[r] = 0.0
                bad[r] = False
                kl_max[r] = 0.0
                for j in range(c):
                    mean[r, j] = 0.0
                    counts[r, j] = 0
            # Pass 1, member by member so each member's block is read contiguously:
            # accumulate q, the members' entropies and their votes.
            for m in range(n_members):
                for r in range(rows):
                    i = lo + r
                    if from_logits:
                        top = -np.inf
                        vote = 0
                        check = 0.0
                        for j in range(c):
                            z = members[m, i, j]
                            check += z * 0.0  # stays 0.0 unless some z is NaN or +-inf
                            if z > top:  # strict: the lowest class wins a tie
                                top = z
                                vote = j
                        if not (check == 0.0):
                            bad[r] = True
                            continue
                        # float64 differences: z - max(z) cannot overflow for float32.
                        top64 = np.float64(top)
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
                            mean[r, j] += exps[j] * inv_s
                        shift[m, r] = top64 + log_s  # log p_mj = z_mj - shift
                    else:
                        total = 0.0
                        lowest = np.inf
                        top = -np.inf
                        vote = 0
                        h = 0.0
                        for j in range(c):
                            p = np.float64(members[m, i, j])
                            total += p
                            lowest = min(lowest, p)
                            if p > top:
                                top = p
                                vote = j
                            if p > 0.0:
                                h -= p * np.log(p)
                        if not (lowest >= -atol and abs(total - 1.0) <= atol):
                            bad[r] = True
                            continue
                        for j in range(c):
                            mean[r, j] += members[m, i, j]
                    entropy_sum[r] += h
                    member_entropy[m, r] = h
                    counts[r, vote] += 1
            # The consensus q and the per-row measures that need only pass 1.
            for r in range(rows):
                if bad[r]:
                    continue
                consensus = 0.0
                top1 = -np.inf
                top2 = -np.inf
                for j in range(c):
                    q = mean[r, j] * inv_members
                    mean[r, j] = q
                    if q > 0.0:
                        lq = np.log(q)
                        consensus -= q * lq
                        log_mean[r, j] = lq
                    else:
                        log_mean[r, j] = 0.0  # only read where some p_mj > 0, i.e. q > 0
                    top2 = max(top2, min(top1, q))
                    top1 = max(top1, q)
                mean[r, 0] = consensus  # q is no longer needed: reuse column 0 for H(q)
                mean[r, 1] = top1 - top2 if c > 1 else top1
            # Pass 2 (only for KL-max): KL(p_m || q) needs q, so each member is read again,
            # from cache. For logits log p_mj = z_mj - shift, so no logarithm is needed.
            if need_kl:
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
                                    kl += p * (lp - log_mean[r, j])
                        else:
                            cross = 0.0
                            for j in range(c):
                                p = np.float64(members[m, i, j])
                                if p > 0.0:
                                    cross += p * log_mean[r, j]
                            kl = -member_entropy[m, r] - cross
                        kl_max[r] = max(kl_max[r], kl)
            for r in range(rows):
                i = lo + r
                if bad[r]:
                    for k in range(n_codes):
                        out[k, i] = np.nan
                    n_bad += 1
                    continue
                consensus = mean[r, 0]
                vote_entropy = 0.0
                modal = 0
                for j in range(c):
                    count = counts[r, j]
                    if count > 0:
                        f = count * inv_members
                        vote_entropy -= f * np.log(f)
                        modal = max(modal, count)
                for k in range(n_codes):
                    code = codes[k]
                    if code == VOTE_ENTROPY:
                        out[k, i] = vote_entropy
                    elif code == CONSENSUS_ENTROPY:
                        out[k, i] = consensus
                    elif code == BALD:
                        out[k, i] = max(consensus - entropy_sum[r] * inv_members, 0.0)
                    elif code == KL_MAX:
                        out[k, i] = kl_max[r]
                    elif code == VARIATION_RATIO:
                        out[k, i] = 1.0 - modal * inv_members
                    else:
                        out[k, i] = 1.0 - mean[r, 1]
    return n_bad


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _vote_scores(votes, n_classes, codes, out):
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
    for task in prange(n_tasks):
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


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _committee_std(values, out):
    """Population standard deviation (ddof=0) across members of values (M, rows).

    Two passes over each block (mean, then squared deviations) for accuracy. Rows with a
    non-finite value get NaN and are counted in the return value.
    """
    n_members, n = values.shape
    n_tasks = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    inv_members = 1.0 / n_members
    n_bad = 0
    for task in prange(n_tasks):
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


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _egl_scores(features, values, codes, from_logits, include_bias, atol, out):
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
    for task in prange(n_tasks):
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
                    check += z * 0.0
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
