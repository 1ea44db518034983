"""Kill a writer (SIGKILL) at random moments; after every kill the reopened lake verifies,
holds every acknowledged change and nothing half-made, and its online store equals the
latest offline rows. Default: 20 kills; ``pytest -m slow``: 500."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import lakecore

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(lake: Path, seed: int, delay: float) -> list[dict]:
    """Start the writer, kill it after ``delay`` seconds; the changes it acknowledged."""
    writer = subprocess.Popen([sys.executable, "-m", "tests.reliability.writer", str(lake),
                               str(seed)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(delay)
    writer.send_signal(signal.SIGKILL)
    out, err = writer.communicate()
    if writer.returncode != -signal.SIGKILL:
        raise AssertionError(f"the writer ended by itself ({writer.returncode}): {err.decode()}")
    lines = out.decode().split("\n")
    return [json.loads(line) for line in lines[:-1] if line]   # the last one may be torn


def check(lake_path: Path, acknowledged: dict) -> None:
    with lakecore.open(lake_path) as lake:
        report = lake.verify()
        assert report.ok, report.problems
        names = {fg.name for fg in lake.feature_groups()}
        if "events" not in names:
            assert not acknowledged["commit"]
            return
        fg = lake.feature_group("events")
        history = {c.version: c.hash for c in fg.history()}
        for version, digest in acknowledged["commit"].items():
            assert history.get(version) == digest, f"acknowledged commit {version} lost"
        if "view" in {v.name for v in lake.feature_views()}:
            datasets = {td.version: td.hash for td in lake.feature_view("view").training_datasets()}
            for version, digest in acknowledged["td"].items():
                assert datasets.get(version) == digest, f"acknowledged dataset {version} lost"
        models = {m.version: m.hash for m in lake.models.versions("m")} if "m" in lake.models.list() else {}
        for version, digest in acknowledged["model"].items():
            assert models.get(version) == digest, f"acknowledged model {version} lost"
        # the online store holds exactly the latest offline row of every key
        offline = fg.read()
        if offline.num_rows:
            latest = {}
            for row in offline.sort_by([("ts", "ascending")]).to_pylist():
                latest[row["id"]] = row
            ids = sorted(latest)
            online = fg.online_read({"id": pa.array(ids + [10_000], pa.int64())}).to_pylist()
            assert online[-1]["v"] is None
            for row in online[:-1]:
                assert row == latest[row["id"]]


def crash_loop(tmp_path: Path, kills: int, seed: int) -> int:
    rng = random.Random(seed)
    lake = tmp_path / "lake"
    acknowledged = {"commit": {}, "td": {}, "model": {}}
    for kill in range(kills):
        for event in run_and_kill(lake, rng.randrange(10**6), rng.uniform(0.3, 1.5)):
            acknowledged[event["op"]][event["version"]] = event["hash"]
        check(lake, acknowledged)
    return sum(len(v) for v in acknowledged.values())


def test_twenty_kills(tmp_path):
    assert crash_loop(tmp_path, 20, seed=1) > 20


@pytest.mark.slow
def test_five_hundred_kills(tmp_path):
    changes = crash_loop(tmp_path, 500, seed=2)
    print(f"500 kills survived, {changes} acknowledged changes checked after every kill")
