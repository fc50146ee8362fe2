"""fastal.score / top_k for committees, models and expected gradient length, from every input."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastal
from fastal import FastalError
from fastal.committee import score_committee
from fastal.models import LinearHead, score_model

import reference as ref
from conftest import random_probs

M, N, C, D = 4, 700, 5, 6


@pytest.fixture(scope="module")
def members():
    rng = np.random.default_rng(0)
    return np.stack([random_probs(rng, N, C, concentration=0.5) for _ in range(M)])


def member_table(members):
    cols = {f"m{m}": pa.FixedSizeListArray.from_arrays(pa.array(members[m].ravel()), C)
            for m in range(members.shape[0])}
    cols["id"] = pa.array(np.arange(members.shape[1]) + 100)
    return pa.table(cols)


@pytest.mark.parametrize("method", ["vote_entropy", "consensus_entropy", "bald", "kl_max",
                                    "variation_ratio", "consensus_margin", "mutual_information"])
def test_committee_methods_through_score_and_top_k(members, tmp_path, method):
    want = score_committee(members, method)
    np.testing.assert_array_equal(fastal.score(members, method), want)
    np.testing.assert_array_equal(fastal.score(list(members), method), want)
    top = fastal.top_k(members, 20, method)
    np.testing.assert_array_equal(top.indices, ref.top_k(want, 20))
    table = member_table(members)
    path = tmp_path / "members.parquet"
    pq.write_table(table, path, row_group_size=97)
    columns = [f"m{m}" for m in range(M)]
    for data in (table, path):
        np.testing.assert_array_equal(fastal.score(data, method, column=columns), want)
        sel = fastal.top_k(data, 20, method, column=columns, id_column="id", chunk_rows=33)
        np.testing.assert_array_equal(sel.indices, top.indices)
        np.testing.assert_array_equal(sel.ids, top.indices + 100)


def test_votes_and_regression(members):
    votes = members.argmax(axis=2)
    np.testing.assert_array_equal(fastal.score(votes, "vote_entropy"),
                                  fastal.score(members, "vote_entropy"))
    preds = np.random.default_rng(1).normal(size=(M, N))
    np.testing.assert_allclose(fastal.score(preds, "committee_std"), preds.std(axis=0), rtol=1e-6)
    table = pa.table({f"r{m}": preds[m] for m in range(M)})
    np.testing.assert_allclose(fastal.score(table, "committee_std", column=[f"r{m}" for m in range(M)]),
                               preds.std(axis=0), rtol=1e-6)
    assert fastal.top_k(preds, 3, "committee_std").indices.tolist() == \
        ref.top_k(fastal.score(preds, "committee_std"), 3).tolist()


def test_model_scoring_from_arrays_and_files(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(N, D)).astype(np.float32)
    head = LinearHead(rng.normal(size=(D, C)).astype(np.float32), rng.normal(size=C).astype(np.float32))
    path = tmp_path / "emb.arrow"
    table = pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), D),
                      "id": pa.array([f"r{i}" for i in range(N)])})
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table, max_chunksize=123)
    for method in ("entropy", "margin", "expected_gradient_length"):
        want = score_model(head, X, method)
        np.testing.assert_allclose(fastal.score(X, method, model=head), want, rtol=1e-6)
        np.testing.assert_allclose(fastal.score(path, method, model=head, chunk_rows=50), want, rtol=1e-6)
        sel = fastal.top_k(path, 10, method, model=head, id_column="id")
        np.testing.assert_array_equal(sel.indices, ref.top_k(fastal.score(X, method, model=head), 10))
        assert list(sel.ids) == [f"r{i}" for i in sel.indices]
    # a LinearHead's uncertainty equals scoring its logits
    logits = X @ head.W + head.b if hasattr(head, "W") else None
    if logits is not None:
        np.testing.assert_allclose(fastal.score(X, "margin", model=head),
                                   fastal.score(logits, "margin", from_logits=True), atol=1e-5)


def test_egl_bias_from_probabilities():
    probs = random_probs(np.random.default_rng(3), 300, 4, np.float64)
    got = fastal.score(probs, "expected_gradient_length_bias")
    norms = np.sqrt((probs ** 2).sum(1, keepdims=True) - 2 * probs + 1)
    np.testing.assert_allclose(got, (probs * norms).sum(1), rtol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda m: fastal.score(m[0], "bald"), "needs the outputs of several models"),
    (lambda m: fastal.score(m[:1], "bald"), "need at least 2 members; got 1"),
    (lambda m: fastal.score(m[0], "expected_gradient_length"), "needs the features and the model"),
    (lambda m: fastal.score(m, "entropy"), r"must be 2-D \(rows, classes\)"),
    (lambda m: fastal.score(member_table(m), "bald", column="m0"), "one list column per member"),
    (lambda m: fastal.score(member_table(m), "entropy", column=["m0", "m1"]), "use a committee method"),
    (lambda m: fastal.score(m[0], "margin", model=LinearHead(np.ones((3, 2)))), "features|dimension|3"),
    (lambda m: fastal.score(m[0], "bald", model=LinearHead(np.ones((5, 2)))), "LinearHead"),
    (lambda m: fastal.score(m[0], "margin", model=LinearHead(np.ones((5, 2))), from_logits=True),
     "from_logits does not apply with model="),
])
def test_bad_family_inputs(members, call, message):
    with pytest.raises(FastalError, match=message):
        call(members)
