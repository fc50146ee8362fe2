"""``fastal convert``: a Parquet pool to one Arrow file, then scored as before."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastal.cli import main

from conftest import random_probs


@pytest.fixture
def pool(tmp_path):
    probs = random_probs(np.random.default_rng(2), 800, 3)
    table = pa.table({
        "id": pa.array(np.arange(800, dtype=np.int64) + 5000),
        "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), 3),
        "text": pa.array([f"example {i}" for i in range(800)]),
    })
    path = tmp_path / "pool.parquet"
    pq.write_table(table, path, row_group_size=150)
    return path


def test_convert_then_score(tmp_path, pool, capsys):
    out = tmp_path / "pool.arrow"
    assert main(["convert", str(pool), str(out)]) == 0
    assert "wrote 800 rows x 3 columns from 1 file to" in capsys.readouterr().err
    with pa.memory_map(str(out)) as source:
        assert pa.ipc.open_file(source).read_all().equals(pq.read_table(pool))
    picks = {}
    for path in (pool, out):
        csv = tmp_path / f"picks-{path.suffix[1:]}.csv"
        assert main(["score", str(path), "--k", "15", "--id-column", "id", "--out", str(csv),
                     "--quiet"]) == 0
        picks[path.suffix] = csv.read_text()
    assert picks[".parquet"] == picks[".arrow"]


def test_columns_force_and_errors(tmp_path, pool, capsys):
    out = tmp_path / "pool.arrow"
    assert main(["convert", str(pool), str(out), "--columns", "probs,id", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    with pa.memory_map(str(out)) as source:
        assert pa.ipc.open_file(source).schema.names == ["probs", "id"]
    assert main(["convert", str(pool), str(out)]) == 2
    assert "pool.arrow exists; pass force=True (--force)" in capsys.readouterr().err
    assert main(["convert", str(pool), str(out), "--force", "--columns", "text"]) == 0
    assert "wrote 800 rows x 1 column from 1 file" in capsys.readouterr().err
    with pa.memory_map(str(out)) as source:
        assert pa.ipc.open_file(source).schema.names == ["text"]
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "x.arrow")]) == 2
    assert capsys.readouterr().err.startswith("fastal: error: pool path does not exist")
    assert main(["convert", str(pool), str(tmp_path / "x.arrow"), "--columns", "zzz"]) == 2
    assert "column 'zzz' not found" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text and "fastal convert pool.parquet pool.arrow" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "convert" in capsys.readouterr().out
