"""Flipping one byte in any kind of file the lake writes is reported by verify()."""

import datetime as dt
import os
import pickle

import pyarrow as pa
import pytest

import lakecore

NOW = dt.datetime.now(dt.timezone.utc)
TS = pa.timestamp("us", "UTC")


def build(path) -> dict[str, str]:
    """A lake with every kind of file; a representative path of each kind."""
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="ts", online=True)
        for i in range(11):                      # 11 commits: a checkpoint at commit 10
            fg.insert({"id": [i, i + 100], "ts": pa.array([NOW, NOW], TS), "v": [1.0 * i, 2.0]})
        view = lake.create_feature_view("view", query=fg.select_all(), labels=["y"])
        td = view.create_training_data(spine={"id": [1, 2], "ts": pa.array([NOW, NOW], TS),
                                              "y": [0, 1]})
        artifact = os.path.join(path, "..", "model.pkl")
        with open(artifact, "wb") as f:
            pickle.dump({"w": [1, 2, 3]}, f)
        model = lake.models.register("m", artifact, training_data=td)
        log = os.path.join(fg.location, "_delta_log")
        return {
            "data file": os.path.join(fg.location, sorted(fg._table.snapshot().files)[0]),
            "commit file": os.path.join(log, f"{3:020d}.json"),
            "checkpoint": os.path.join(log, f"{10:020d}.checkpoint.parquet"),
            "training data": os.path.join(lake.path, td._spec.files["all"][0].path),
            "stored spine": os.path.join(lake.path, td._spec.spine.path),
            "model artifact": model.path,
            "audit log": os.path.join(lake.path, "audit.log"),
            "catalog": os.path.join(lake.path, "catalog.json"),
        }


def flip(path: str, where: float) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        i = int(len(data) * where)
        data[i] ^= 0x01
        f.seek(0)
        f.write(bytes(data))


@pytest.mark.parametrize("where", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("kind", ["data file", "commit file", "checkpoint", "training data",
                                  "stored spine", "model artifact", "audit log", "catalog"])
def test_a_flipped_byte_is_reported(tmp_path, kind, where):
    path = str(tmp_path / "lake")
    files = build(path)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.verify().ok
    flip(files[kind], where)
    try:
        with lakecore.open(path, readonly=True) as lake:
            problems = lake.verify().problems
    except lakecore.LakeError as exc:        # a catalog that no longer parses
        problems = [str(exc)]
    assert problems, f"a flipped byte in the {kind} went unnoticed"
