"""The fastal command line: score a file, write the picks, fail with a clear message."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastal
from fastal.cli import main
from fastal.demo import write_pool


@pytest.fixture
def pool(tmp_path):
    path = tmp_path / "pool.arrow"
    write_pool(path, 5000, 4, seed=1, batch_rows=777)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".csv"])
def test_score_writes_the_top_k(tmp_path, pool, suffix, capsys):
    out = tmp_path / f"picks{suffix}"
    assert main(["score", str(pool), "--method", "entropy", "--k", "20",
                 "--id-column", "id", "--out", str(out), "--chunk-rows", "999"]) == 0
    if suffix == ".parquet":
        table = pq.read_table(out)
    elif suffix == ".arrow":
        table = pa.ipc.open_file(str(out)).read_all()
    else:
        import pyarrow.csv as pacsv
        table = pacsv.read_csv(out)
    want = fastal.top_k(pool, 20, "entropy", id_column="id")
    assert table.column_names == ["rank", "index", "id", "score"]
    np.testing.assert_array_equal(table["index"].to_numpy(), want.indices)
    np.testing.assert_array_equal(table["id"].to_numpy(), want.ids)
    np.testing.assert_allclose(table["score"].to_numpy(), want.scores, rtol=1e-6)
    assert "picked 20 of 5,000 rows by entropy" in capsys.readouterr().err


def test_score_to_stdout_with_columns(tmp_path, capsys):
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]], dtype=np.float32)
    path = tmp_path / "cols.parquet"
    pq.write_table(pa.table({"a": probs[:, 0], "b": probs[:, 1]}), path)
    assert main(["score", str(path), "--k", "2", "--column", "a,b", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].replace('"', "") == "rank,index,score"
    assert [line.split(",")[1] for line in lines[1:]] == ["1", "2"]


@pytest.mark.parametrize("argv, message", [
    (["--k", "0"], "k must be >= 1"),
    (["--k", "10", "--method", "bogus"], "method must be one of"),
    (["--k", "10", "--column", "nope"], "column 'nope' not found"),
    (["--k", "10", "--out", "x.txt"], "--out must end in"),
    (["--k", "99999"], "larger than the pool"),
])
def test_errors_are_reported_not_raised(pool, argv, message, capsys):
    assert main(["score", str(pool)] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastal: error: ") and message in err


def test_help_explains_methods(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in fastal.UNCERTAINTY_METHODS:
        assert name in text
    assert "--from-logits" in text and "--id-column" in text


def test_methods_and_demo(capsys):
    assert main(["methods"]) == 0
    assert "ratio" in capsys.readouterr().out
    assert main(["demo", "--rows", "20000", "--classes", "5", "--k", "3", "--no-simulation"]) == 0
    out = capsys.readouterr().out
    for name in fastal.UNCERTAINTY_METHODS:
        assert name in out
    assert "rows/s" in out
    # compile (or cache load) time is reported apart, before the scoring rates
    assert out.index("kernels compiled or loaded from the cache in") < out.index("rows/s")


def test_demo_simulation_on_digits(tmp_path, capsys):
    assert main(["demo", "--rows", "5000", "--datasets", "digits", "--repeats", "1",
                 "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits: labels needed to reach random sampling's accuracy" in out
    for name in ("random", "margin", "kcenter", "uncertain_kcenter"):
        assert f"| {name} |" in out
    assert (tmp_path / "digits.png").stat().st_size > 10_000
    assert (tmp_path / "digits.csv").exists()


def test_select_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    probs = rng.dirichlet(np.ones(3), 300).astype(np.float32)
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({
        "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 8),
        "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), 3)}), path)
    (tmp_path / "labeled.txt").write_text("0\n5\n7\n")
    out = tmp_path / "batch.csv"
    assert main(["select", str(path), "--strategy", "uncertain_kcenter", "--k", "10",
                 "--column", "emb", "--probs-column", "probs", "--labeled",
                 str(tmp_path / "labeled.txt"), "--out", str(out)]) == 0
    import pyarrow.csv as pacsv
    got = pacsv.read_csv(out)["index"].to_numpy()
    want = fastal.select(emb, 10, "uncertain_kcenter", probs=probs, labeled=[0, 5, 7]).indices
    np.testing.assert_array_equal(got, want)
    assert main(["strategies"]) == 0
    assert "typiclust" in capsys.readouterr().out
    assert main(["select", str(path), "--k", "5", "--column", "emb", "--strategy", "badge"]) == 2
    assert "needs class probabilities and embeddings" in capsys.readouterr().err
