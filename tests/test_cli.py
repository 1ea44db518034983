import subprocess
import sys

import pytest

import lakecore
from lakecore.cli import main


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "lake"
    assert main(["quickstart", str(path), "--rows", "4000"]) == 0
    return path


def test_quickstart_builds_a_lake_end_to_end(demo_lake, capsys):
    with lakecore.open(demo_lake, readonly=True) as lake:
        assert {fg.name for fg in lake.feature_groups()} == {"transactions", "card_activity"}
        assert lake.feature_group("card_activity").online
        td = lake.feature_view("fraud").training_data(1)
        assert set(td.splits) == {"train", "test"}
        model = lake.models.get("fraud_scorer", alias="production")
        assert "test_auc" in model.metrics
        assert [n.kind for n in lake.lineage(model)] == ["td", "fv", "fg", "fg"]
        assert lake.verify().ok
        predictor = lake.predictor("fraud_scorer", alias="production",
                                   load=lakecore.cli.LogisticModel.load)
        scores = predictor.predict({"card": [0, 1]})
        assert scores.shape == (2,) and ((0 <= scores) & (scores <= 1)).all()


def test_inspection_commands(demo_lake, capsys):
    assert main(["info", str(demo_lake)]) == 0
    out = capsys.readouterr().out
    assert "fg:card_activity@1" in out and "model:fraud_scorer@1" in out
    assert main(["history", str(demo_lake), "fg:transactions@1"]) == 0
    assert "insert" in capsys.readouterr().out
    assert main(["lineage", str(demo_lake), "model:fraud_scorer@1"]) == 0
    assert "td:fraud@1/1" in capsys.readouterr().out
    assert main(["lineage", str(demo_lake), "fg:card_activity@1", "--downstream"]) == 0
    assert "model:fraud_scorer@1" in capsys.readouterr().out
    assert main(["verify", str(demo_lake)]) == 0


def test_verify_exits_1_on_problems(tmp_path, capsys):
    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1], "v": [1.0]})
        data = next(p for p in (path / fg.location).iterdir() if p.suffix == ".parquet")
    data.write_bytes(b"not parquet")
    assert main(["verify", str(path)]) == 1
    assert "sha256" in capsys.readouterr().out


def test_version_and_help(capsys):
    assert main([]) == 0
    assert "quickstart" in capsys.readouterr().out


def test_python_dash_m_is_the_same_program():
    result = subprocess.run([sys.executable, "-m", "lakecore", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("lakecore ")


def test_errors_print_one_line_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lakecore", "quickstart", "--rows", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--rows" in result.stderr
    result = subprocess.run([sys.executable, "-m", "lakecore", "info", str(tmp_path / "none")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "lakecore: error: no lake at" in result.stderr
