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
import pytest

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


FULL_DISK_AT = textwrap.dedent("""
    import os, resource, signal, sys, tempfile
    import numpy as np
    import lakecore
    path, where = sys.argv[1], sys.argv[2]
    lake = lakecore.open(path)
    fg = lake.create_feature_group("g", primary_key="id", online=True)
    fg.insert({"id": np.arange(10), "v": np.zeros(10)})
    artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
    with open(artifact, "wb") as f:
        f.write(os.urandom(300_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)            # EFBIG instead of a signal
    limit = {"online write": 4_000_000, "model artifact": 100_000, "catalog": 60_000}[where]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        if where == "online write":
            fg.insert({"id": np.arange(10, 200_000), "v": np.zeros(199_990)})
        elif where == "model artifact":
            lake.models.register("m", artifact)
        else:
            for i in range(200):
                lake.create_feature_group(f"g{i}", primary_key="id", description="d" * 5000)
        print("no error")
    except lakecore.StorageError as exc:
        print("StorageError", exc)
""")


@pytest.mark.parametrize("where", ["online write", "model artifact", "catalog"])
def test_a_full_disk_anywhere_is_a_storage_error_and_the_lake_recovers(tmp_path, where):
    path = tmp_path / "lake"
    result = subprocess.run([sys.executable, "-c", FULL_DISK_AT, str(path), where],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("StorageError"), result.stdout + result.stderr[-2000:]
    with lakecore.open(path) as lake:               # the next writable open makes it whole
        assert lake.verify().ok, lake.verify().problems
        fg = lake.feature_group("g")
        assert fg.online_read({"id": [3]}).column("v").to_pylist() == [0.0]
        fg.insert({"id": [5], "v": [5.0]})
        assert lake.verify().ok
