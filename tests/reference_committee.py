"""Slow, obviously correct NumPy versions of the committee and EGL measures (float64)."""

import numpy as np

from reference import entropy, softmax


def member_probs(members, from_logits=False):
    """(M, N, C) probabilities, float64."""
    members = np.asarray(members, dtype=np.float64)
    if from_logits:
        return np.stack([softmax(z) for z in members])
    return members


def _xlogx(p):
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def votes_of(members):
    """(M, N) argmax votes, first maximum on ties."""
    return np.argmax(np.asarray(members), axis=2)


def vote_histogram(votes, n_classes=None):
    votes = np.asarray(votes)
    n_classes = int(votes.max()) + 1 if n_classes is None else n_classes
    counts = np.zeros((votes.shape[1], n_classes))
    for m in range(votes.shape[0]):
        counts[np.arange(votes.shape[1]), votes[m]] += 1
    return counts / votes.shape[0]


def vote_entropy_from_votes(votes, n_classes=None):
    return -_xlogx(vote_histogram(votes, n_classes)).sum(axis=1)


def variation_ratio_from_votes(votes, n_classes=None):
    return 1.0 - vote_histogram(votes, n_classes).max(axis=1)


def vote_entropy(probs):
    return vote_entropy_from_votes(votes_of(probs), probs.shape[2])


def variation_ratio(probs):
    return variation_ratio_from_votes(votes_of(probs), probs.shape[2])


def consensus_entropy(probs):
    return entropy(probs.mean(axis=0))


def kl_to_consensus(probs):
    """(M, N): KL(p_m || mean) for each member, computed term by term."""
    q = probs.mean(axis=0)
    log_q = np.log(np.where(q > 0, q, 1.0))
    return np.stack([(_xlogx(p) - np.where(p > 0, p * log_q, 0.0)).sum(axis=1) for p in probs])


def bald(probs):
    return np.maximum(kl_to_consensus(probs).mean(axis=0), 0.0)


def kl_max(probs):
    return np.maximum(kl_to_consensus(probs).max(axis=0), 0.0)


def consensus_margin(probs):
    s = np.sort(probs.mean(axis=0), axis=1)
    return 1.0 - (s[:, -1] - s[:, -2])


COMMITTEE = {
    "vote_entropy": vote_entropy,
    "consensus_entropy": consensus_entropy,
    "bald": bald,
    "kl_max": kl_max,
    "variation_ratio": variation_ratio,
    "consensus_margin": consensus_margin,
}


def committee(members, method, from_logits=False):
    if from_logits and method in ("vote_entropy", "variation_ratio"):
        # Votes are the argmax of the logits (= of the exact softmax): rounding the softmax
        # can turn a strict maximum into a tie, e.g. logits (0, 1e-38).
        votes = votes_of(np.asarray(members, dtype=np.float64))
        fn = vote_entropy_from_votes if method == "vote_entropy" else variation_ratio_from_votes
        return fn(votes, np.shape(members)[2])
    return COMMITTEE[method](member_probs(members, from_logits))


def committee_std(values):
    return np.asarray(values, dtype=np.float64).std(axis=0)


def egl_explicit(features, probs, include_bias=True, bias_only=False):
    """EGL by building every (C, d[+1]) cross-entropy gradient and taking its norm."""
    x = np.asarray(features, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    n, c = p.shape
    out = np.zeros(n)
    for i in range(n):
        xi = np.ones(1) if bias_only else (np.append(x[i], 1.0) if include_bias else x[i])
        for y in range(c):
            residual = p[i] - np.eye(c)[y]
            gradient = np.outer(residual, xi)  # d loss / d [W^T, b] for label y
            out[i] += p[i, y] * np.linalg.norm(gradient)
    return out
