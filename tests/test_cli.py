import subprocess
import sys

import pytest

from pathlib import Path

import lakecore
from lakecore.cli import main


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "lake"
    assert main(["quickstart", str(path), "--rows", "4000"]) == 0
    return path


def test_quickstart_prints_the_lineage_as_a_graph(tmp_path, capsys):
    assert main(["quickstart", str(tmp_path / "lake"), "--rows", "2000"]) == 0
    out = capsys.readouterr().out
    graph = out[out.index("- lineage of model"):].splitlines()[1:8]
    assert graph[0].strip() == "model:fraud_scorer@1"
    assert "└── td:fraud@1/1" in graph[1] and "├── fv:fraud@1" in graph[2]
    assert sum("fg:" in line for line in graph) == 4


def test_quickstart_builds_a_lake_end_to_end(demo_lake, capsys):
    with lakecore.open(demo_lake, readonly=True) as lake:
        assert {fg.name for fg in lake.feature_groups()} == {
            "transactions", "card_activity", "fraud_scorer_predictions"}
        assert lake.feature_group("card_activity").online
        assert lake.feature_group("fraud_scorer_predictions").read().num_rows == 505
        assert lake.feature_group("transactions").validation_history()[0].ok
        assert (Path(demo_lake).parent / f"{Path(demo_lake).name}-drift.html").exists()
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
        data = path / fg.location / next(iter(fg._table.snapshot().files))
    data.write_bytes(b"not parquet")
    assert main(["verify", str(path)]) == 1
    assert "sha256" in capsys.readouterr().out


def test_verify_prints_the_audit_head_and_checks_an_anchor(tmp_path, capsys):
    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        lake.create_feature_group("g", primary_key="id").insert({"id": [1], "v": [1.0]})
    assert main(["verify", str(path)]) == 0
    head = capsys.readouterr().out.split("audit head: ")[1].split()[0]
    assert main(["verify", str(path), "--anchor", head]) == 0
    capsys.readouterr()
    (path / "audit.log").write_bytes(b"")           # the whole log dropped
    assert main(["verify", str(path), "--anchor", head]) == 1
    assert "anchored event" in capsys.readouterr().out
    assert main(["verify", str(path), "--anchor", "nonsense"]) == 2


def test_no_arguments_print_the_usage_with_exit_status_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: lakecore") and captured.out == ""
    result = subprocess.run([sys.executable, "-m", "lakecore"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize("command, described, defaults", [
    ("quickstart", "Generate card transactions", ["(default: 200000)", "(default: None)"]),
    ("info", "feature groups", []),
    ("history", "commits", []),
    ("lineage", "tree", ["(default: False)"]),
    ("verify", "Re-hash", ["(default: False)"]),
])
def test_every_subcommand_help_describes_it_with_defaults(capsys, command, described, defaults):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"usage: lakecore {command}" in out and described in out
    for default in defaults:
        assert default in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert command in capsys.readouterr().out


def test_a_ref_that_does_not_exist_is_one_line_with_exit_status_2(demo_lake, capsys):
    for argv in (["lineage", str(demo_lake), "model:nope@1"],
                 ["lineage", str(demo_lake), "fg:card_activity@1#99", "--downstream"],
                 ["lineage", str(demo_lake), "td:fraud@1/7"],
                 ["history", str(demo_lake), "fg:nope@1"],
                 ["history", str(demo_lake), "fg:card_activity@1#99"],
                 ["history", str(demo_lake), "model:fraud_scorer@1"],
                 ["lineage", str(demo_lake), "garbage"]):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.splitlines()) == 1, (argv, captured)
        assert captured.err.startswith("lakecore: error: ")


def test_history_of_one_commit(demo_lake, capsys):
    assert main(["history", str(demo_lake), "fg:card_activity@1"]) == 0
    every = capsys.readouterr().out.splitlines()
    assert main(["history", str(demo_lake), "fg:card_activity@1#0"]) == 0
    assert capsys.readouterr().out.splitlines() == [every[0]]


def test_lineage_is_drawn_as_a_graph(demo_lake, capsys):
    assert main(["lineage", str(demo_lake), "model:fraud_scorer@1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model:fraud_scorer@1"
    assert lines[1].startswith("└── td:fraud@1/1")
    assert [line.split()[-2] if "sha256" in line else line.split()[-1] for line in lines[2:]] \
        == ["fv:fraud@1", "fg:transactions@1", "fg:card_activity@1", "fg:transactions@1#0",
            "fg:card_activity@1#0"]
    assert lines[3].startswith("    │   ├── fg:transactions@1")
    assert main(["lineage", str(demo_lake), "fg:card_activity@1", "--downstream"]) == 0
    assert [line.lstrip("└─├│ ").split()[0] for line in capsys.readouterr().out.splitlines()] \
        == ["fg:card_activity@1", "fv:fraud@1", "td:fraud@1/1", "model:fraud_scorer@1"]


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
