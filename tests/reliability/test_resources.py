"""Resource faults: the disk refusing a write (a file size limit) and LMDB's map filling up
give a clean LakeError or transparent growth; nothing acknowledged is lost and the lake works
afterwards."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa

import lakecore

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    import lakecore
    path = sys.argv[1]
    lake = lakecore.open(path)
    fg = lake.create_feature_group("g", primary_key="id")
    fg.insert({"id": np.arange(10), "v": np.zeros(10)})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)            # EFBIG instead of a signal
    limit = 64 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        fg.insert({"id": np.arange(10, 200_010), "v": np.random.default_rng(0).random(200_000)})
        print("big insert: no error")
    except lakecore.LakeError as exc:
        print("big insert: LakeError", exc)
    fg.insert({"id": [7], "v": [7.0]})
    print("small insert after: ok")
""")


def test_a_file_size_limit_gives_a_clean_error_and_the_lake_goes_on(tmp_path):
    path = tmp_path / "lake"
    result = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "big insert: LakeError" in result.stdout and "nothing was committed" in result.stdout
    assert "small insert after: ok" in result.stdout
    with lakecore.open(path) as lake:
        fg = lake.feature_group("g")
        assert [c.operation for c in fg.history()] == ["insert", "insert"]
        assert sorted(fg.read().column("id").to_pylist()) == list(range(10))
        assert fg.read().column("v").to_pylist()[7] in (0.0, 7.0)
        assert lake.verify().ok
        leftovers = [f for f in os.listdir(fg.location) if f.endswith(".parquet")]
        assert len(leftovers) == 2                 # the failed write's files were removed


def test_the_online_map_grows_transparently(tmp_path, monkeypatch):
    from lakecore.online import environments

    monkeypatch.setattr(environments, "INITIAL_MAP_SIZE", 1 << 20)   # 1 MiB
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        for i in range(5):
            ids = np.arange(i * 20_000, (i + 1) * 20_000)
            fg.insert(pa.table({"id": ids, "s": pa.array(["x" * 40] * len(ids))}))
        got = fg.online_read({"id": [0, 99_999]}).column("s").to_pylist()
        assert got == ["x" * 40] * 2
        assert lake.verify().ok
