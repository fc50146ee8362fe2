"""``fastal simulate``: the savings table on a labeled file, the recommendation, bad input."""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from fastal.cli import main
from fastal.datasets import load_digits


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    X, y = load_digits()
    X, y = X[:700], y[:700]
    root = tmp_path_factory.mktemp("simulate")
    emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    pq.write_table(pa.table({"emb": emb, "digit": pa.array([f"d{v}" for v in y])}),
                   root / "digits.parquet")
    pacsv.write_csv(pa.table({**{f"f{i}": X[:, i] for i in range(0, 64, 4)}, "digit": y}),
                    root / "digits.csv")
    return root


def test_savings_money_and_curves(digits_files, tmp_path, capsys):
    code = main(["simulate", str(digits_files / "digits.parquet"), "--label-column", "digit",
                 "--embedding-column", "emb", "--strategies", "margin", "--budget", "100",
                 "--batch-size", "20", "--repeats", "2", "--cost-per-label", "3",
                 "--seconds-per-label", "40", "--out", str(tmp_path / "c.png"), "--csv",
                 str(tmp_path / "c.csv"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "pool 560 rows, test 140" in out and "seed set 20, batches of 20, budget 100" in out
    assert "| margin |" in out and "money saved @60" in out and "annotator-hours saved @100" in out
    assert "AULC (accuracy, mean ± SE)" in out and "recommendation:" in out
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "c.csv").exists()


def test_recommends_random_when_nothing_beats_it(tmp_path, capsys):
    # Two far-apart blobs: every strategy is at 100 % from the seed set on, so no gain.
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 150)
    X = rng.normal(size=(300, 2)) + 20 * y[:, None]
    pacsv.write_csv(pa.table({"a": X[:, 0], "b": X[:, 1], "label": y}), tmp_path / "easy.csv")
    assert main(["simulate", str(tmp_path / "easy.csv"), "--label-column", "label",
                 "--budget", "60", "--batch-size", "10", "--repeats", "2", "--out", "-",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "No strategy beat random sampling by more than 2 standard errors" in out
    assert "recommendation: random sampling." in out


@pytest.mark.parametrize("argv, message", [
    (["--label-column", "nope"], "--label-column 'nope' is not a column of DATA"),
    (["--label-column", "digit", "--features", "f0,zz"], "--features zz not in DATA"),
    (["--label-column", "digit", "--embedding-column", "f0"], "must hold one list of numbers"),
    (["--label-column", "digit", "--strategies", "magic"], "strategies item must be one of"),
    (["--label-column", "digit", "--budget", "5000"], "budget must be"),
    (["--label-column", "digit", "--out", "x.txt"], "--out must end in .png"),
])
def test_bad_input_is_one_line(digits_files, capsys, argv, message):
    code = main(["simulate", str(digits_files / "digits.csv"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_or_foreign_file(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "none.csv"), "--label-column", "y"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert main(["simulate", str(tmp_path / "bad.parquet"), "--label-column", "y"]) == 2
    assert "cannot read DATA" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "x.json"), "--label-column", "y"]) == 2
    assert "DATA must end in .parquet" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "fastal simulate labeled.parquet --label-column y" in capsys.readouterr().out
