import subprocess
import sys

import pyarrow.parquet as pq

from lakecore.cli import main


def test_quickstart_runs_the_demo_and_writes_its_output(tmp_path, capsys):
    assert main(["quickstart", str(tmp_path / "demo"), "--rows", "5000"]) == 0
    out = capsys.readouterr().out
    assert "lakecore" in out and "point-in-time join" in out
    table = pq.read_table(tmp_path / "demo" / "asof_demo.parquet")
    assert table.num_rows == 5000
    assert table.column_names == ["ticker", "time", "quantity", "bid"]


def test_version_and_help(capsys):
    assert main([]) == 0
    assert "quickstart" in capsys.readouterr().out


def test_python_dash_m_is_the_same_program():
    result = subprocess.run([sys.executable, "-m", "lakecore", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("lakecore ")


def test_bad_arguments_print_one_line_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "lakecore", "quickstart", "--rows", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--rows" in result.stderr
