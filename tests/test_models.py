"""Model registry, predictor, lineage, audit log and verify."""

import datetime as dt
import os
import pickle

import numpy as np
import pyarrow as pa
import pytest

import lakecore
from lakecore import LakeError, NotFoundError, ValidationError

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
TS = pa.timestamp("us", "UTC")


class Linear:
    """A tiny model: X @ weights."""

    def __init__(self, weights):
        self.weights = np.asarray(weights, float)

    def predict(self, X):
        return np.nan_to_num(X) @ self.weights


class Classifier(Linear):
    """A tiny classifier: probabilities of a logistic over X @ weights."""

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-(np.nan_to_num(X) @ self.weights)))
        return np.column_stack([1 - p, p])


def save(model, path) -> str:
    with open(path, "wb") as f:
        pickle.dump(model, f)
    return str(path)


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


@pytest.fixture
def trained(lake, tmp_path):
    cards = lake.create_feature_group("cards", primary_key="card", event_time="at", online=True)
    cards.insert({"card": [1, 2, 3], "at": pa.array([NOW] * 3, TS), "spend": [10.0, 20.0, 40.0],
                  "count": [1, 2, 3]})
    view = lake.create_feature_view("risk", query=cards.select_all(), labels=["y"],
                                    transforms={"spend": "min_max_scaler"})
    td = view.create_training_data(spine={"card": [1, 2, 3], "at": pa.array([NOW] * 3, TS),
                                          "y": [0, 1, 1]})
    return cards, view, td


def test_registry_rules(lake, trained, tmp_path):
    _, _, td = trained
    v1 = lake.models.register("scorer", save(Linear([1, 0]), tmp_path / "a.pkl"),
                              training_data=td, metrics={"auc": 0.7}, params={"depth": 3})
    folder = tmp_path / "folder_model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_bytes(b"\x00\x01")
    (folder / "config.json").write_text("{}")
    v2 = lake.models.register("scorer", folder, training_data=td, metrics={"auc": 0.9})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.path.startswith(lake.path) and os.path.isfile(v1.path)
    assert sorted(os.listdir(v2.path)) == ["config.json", "sub"]
    assert not os.access(v1.path, os.W_OK) or os.geteuid() == 0
    assert not (os.stat(v1.path).st_mode & 0o222)                 # read-only
    assert v1.params == {"depth": 3} and v1.training_data.hash == td.hash
    assert v1.hash != v2.hash
    assert lake.models.get("scorer").version == 2
    assert lake.models.best("scorer", "auc").version == 2
    assert lake.models.best("scorer", "auc", mode="min").version == 1
    assert [m.version for m in lake.models.versions("scorer")] == [1, 2]
    assert lake.models.list() == ["scorer"]
    lake.models.set_alias("scorer", "prod", 1)
    assert lake.models.get("scorer", alias="prod").version == 1 and v1.aliases == ["prod"]
    with pytest.raises(LakeError, match="aliased as prod"):
        lake.models.delete("scorer", 1)
    lake.models.set_alias("scorer", "prod", 2)
    lake.models.delete("scorer", 1)
    assert not os.path.exists(v1.path)
    with pytest.raises(NotFoundError):
        lake.models.get("scorer", 1)
    with pytest.raises(NotFoundError):
        lake.models.get("scorer", alias="staging")
    with pytest.raises(NotFoundError):
        lake.models.register("scorer", tmp_path / "missing.pkl")
    with pytest.raises(ValidationError, match="auc"):
        lake.models.register("scorer", folder, metrics={"auc": float("nan")})
    with pytest.raises(NotFoundError):
        lake.models.best("scorer", "loss")


def test_moving_the_alias_changes_predictions(lake, trained, tmp_path):
    _, view, td = trained
    lake.models.register("scorer", save(Linear([1, 0]), tmp_path / "a.pkl"), training_data=td)
    lake.models.register("scorer", save(Linear([0, 1]), tmp_path / "b.pkl"), training_data=td)
    lake.models.set_alias("scorer", "prod", 1)
    predictor = lake.predictor("scorer", alias="prod", load=load)
    keys = {"card": [3, 1, 9]}
    X = predictor.features(keys)
    assert X.dtype == np.float64 and X.shape == (3, 2)
    vectors = view.feature_vectors(keys, training_data=td)
    assert np.array_equal(X[:, 0], vectors.column("spend").to_numpy(zero_copy_only=False),
                          equal_nan=True)
    assert list(predictor.predict(keys)) == [1.0, 0.0, 0.0]     # spend scaled to [0, 1]
    lake.models.set_alias("scorer", "prod", 2)
    assert predictor.reload() is True and predictor.version == 2
    assert list(predictor.predict(keys)) == [3.0, 1.0, 0.0]     # count
    assert predictor.reload() is False


def test_lineage_both_ways(lake, trained, tmp_path):
    cards, view, td = trained
    model = lake.models.register("scorer", save(Linear([1, 0]), tmp_path / "a.pkl"),
                                 training_data=td)
    up = lake.lineage(model)
    assert [(n.kind, n.name, n.version, n.commit) for n in up] == [
        ("td", "risk", 1, 1), ("fv", "risk", 1, None), ("fg", "cards", 1, 0)]
    assert up[0].hash == td.hash and up[2].hash == cards.history()[0].hash
    assert up[1].hash.startswith("sha256:") and up[1].ref == "fv:risk@1"
    assert lake.lineage("td:risk@1/1") == up[1:]
    assert [(n.kind, n.name, n.version, n.commit, n.hash) for n in lake.lineage(view)] == [
        ("fg", "cards", 1, None, None)]
    # downstream, the other way
    down = lake.lineage("fg:cards@1#0", direction="downstream")
    assert [(n.kind, n.name) for n in down] == [("td", "risk"), ("model", "scorer")]
    assert [(n.kind, n.name) for n in lake.lineage(cards, "downstream")] == [
        ("fv", "risk"), ("td", "risk"), ("model", "scorer")]
    assert lake.lineage(view, "downstream") == down
    assert [n.ref for n in lake.lineage(td, "downstream")] == ["model:scorer@1"]
    assert lake.lineage(model, "downstream") == []
    assert lake.lineage(cards) == []
    # a view's hash is its definition's: the same in both directions, changed by nothing else
    assert lake.lineage(cards, "downstream")[0].hash == up[1].hash
    cards.insert({"card": [4], "at": pa.array([NOW], TS), "spend": [1.0], "count": [1]})
    assert lake.lineage(model)[1].hash == up[1].hash
    # what does not exist is NotFoundError both ways
    for ref in ["fg:cards@1#5", "fg:nope@1", "fg:cards@2", "fv:risk@2", "td:risk@1/2",
                "model:scorer@2", "model:nope@1"]:
        for direction in ("upstream", "downstream"):
            with pytest.raises(NotFoundError):
                lake.lineage(ref, direction)
    with pytest.raises(ValidationError):
        lake.lineage("table:cards")


def test_verify_reports_each_kind_of_damage(lake, trained, tmp_path):
    cards, view, td = trained
    model = lake.models.register("scorer", save(Linear([1, 0]), tmp_path / "a.pkl"),
                                 training_data=td)
    cards.insert({"card": [4], "at": pa.array([NOW], TS), "spend": [1.0], "count": [1]})
    report = lake.verify()
    assert report.ok, report.problems
    assert report.files_checked >= 4

    def flip(path):
        os.chmod(path, 0o644)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0xFF
        with open(path, "wb") as f:
            f.write(bytes(data))

    data_file = os.path.join(cards.location, sorted(cards._table.snapshot().files)[0])
    td_file = os.path.join(lake.path, td._spec.files["all"][0].path)
    damages = [
        (lambda: flip(data_file), "cards@1 data file"),
        (lambda: flip(td_file), "td:risk@1/1 training data"),
        (lambda: flip(model.path), "model:scorer@1 artifact"),
    ]
    for damage, where in damages:
        damage()
        problems = lake.verify().problems
        assert any(where in p and "sha256" in p for p in problems), (where, problems)
    log = os.path.join(cards.location, "_delta_log", f"{0:020d}.json")
    os.remove(log)
    assert any("commit file" in p and "missing" in p for p in lake.verify().problems)


def test_audit_log_chain_and_repair(tmp_path):
    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1], "v": [1.0]})
        fg.insert({"id": [2], "v": [2.0]})
        events = lake.audit_log()
        assert [e.op for e in events] == ["create_feature_group", "insert", "insert"]
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[1].prev_hash == events[0].hash
        assert events[2].target == "fg:g@1#1" and events[2].object_hash == fg.hash
    audit = path / "audit.log"
    whole = audit.read_bytes()
    audit.write_bytes(whole + b'{"seq": 4, "ti')                 # a crash mid-append
    with lakecore.open(path) as lake:
        assert [e.target for e in lake.audit_log()][-1] == "fg:g@1#1"
        assert lake.verify().ok
        lake.feature_group("g").insert({"id": [3], "v": [3.0]})    # cuts the torn line
        assert [e.seq for e in lake.audit_log()] == [1, 2, 3, 4]
        assert lake.verify().ok
    lines = audit.read_bytes().splitlines(keepends=True)
    audit.write_bytes(b"".join(lines[:-1]) + lines[-1][:10])    # an event cut off by hand
    with lakecore.open(path, readonly=True) as lake:           # its commit is not adopted
        assert any("#2: no audit event records this commit" in p
                   for p in lake.verify().problems)
        with pytest.raises(lakecore.IntegrityError, match="no audit event"):
            lake.feature_group("g").read()
    audit.write_bytes(b"".join(lines))
    edited = audit.read_bytes().replace(b'"insert"', b'"delete"', 1)
    audit.write_bytes(edited)
    with lakecore.open(path, readonly=True) as lake:
        assert any("audit event 2" in p for p in lake.verify().problems)


def test_fast_verify_trusts_unchanged_file_identities(lake, trained):
    cards, view, td = trained
    assert lake.verify(fast=True).ok                 # builds the cache
    path = os.path.join(lake.path, td._spec.files["all"][0].path)
    st = os.stat(path)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-10] ^= 0xFF
    with open(path, "r+b") as f:                     # same inode and size
        f.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    assert lake.verify(fast=True).ok                 # trusted from the cache
    assert not lake.verify().ok                      # the full check re-hashes it


def test_audit_appends_read_only_the_tail(tmp_path):
    from lakecore.governance.audit import AuditLog

    log = AuditLog(str(tmp_path))
    events = [log.append("op", f"fg:g@1#{i}", f"sha256:{i}") for i in range(300)]
    assert log.last_event() == events[-1]
    assert log.events() == events and log.check_chain() == []
    with open(log.path, "ab") as f:
        f.write(b'{"seq": 301, "ti')                 # torn
    assert log.last_event() == events[-1]
    assert log.append("op", "fg:g@1#300", None).seq == 301
    assert log.check_chain() == []


def test_register_after_a_crash_that_left_the_artifact_but_no_catalog_entry(lake, tmp_path):
    path = save(Linear([1]), tmp_path / "a.pkl")
    lake.models.register("m", path)
    # a writer killed after moving v2's files in place, before recording v2 in the catalog
    orphan = os.path.join(lake.path, "models", "m", "v2")
    os.makedirs(os.path.join(lake.path, "models", "m", ".staging-dead"))
    os.makedirs(orphan)
    with open(os.path.join(orphan, "a.pkl"), "wb") as f:
        f.write(b"half")
    v2 = lake.models.register("m", path)
    assert v2.version == 2 and load(v2.path).weights.tolist() == [1.0]
    assert sorted(os.listdir(os.path.join(lake.path, "models", "m"))) == ["v1", "v2"]
    assert lake.verify().ok


def test_predictor_methods_and_fill(lake, trained, tmp_path):
    cards, view, td = trained
    lake.models.register("clf", save(Classifier([1, 0]), tmp_path / "c.pkl"), training_data=td)
    keys = {"card": [1, 99, 3]}                 # 99 was never seen
    plain = lake.predictor("clf", load=load)
    X = plain.features(keys)
    assert np.isnan(X[1]).all() and not np.isnan(X[[0, 2]]).any()
    proba = plain.predict(keys, method="predict_proba")
    assert proba.shape == (3, 2)
    assert np.allclose(proba, Classifier([1, 0]).predict_proba(X))
    assert np.allclose(plain.predict(keys), Classifier([1, 0]).predict(X))
    filled = lake.predictor("clf", load=load, fill=-1.0)
    Xf = filled.features(keys)
    assert Xf[1].tolist() == [-1.0, -1.0] and np.array_equal(Xf[[0, 2]], X[[0, 2]])
    assert np.allclose(filled.predict(keys, method="predict_proba"),
                       Classifier([1, 0]).predict_proba(Xf))
    with pytest.raises(ValidationError, match="no method 'decision_function'"):
        plain.predict(keys, method="decision_function")
    with pytest.raises(ValidationError, match="method"):
        plain.predict(keys, method="__class__()")
    with pytest.raises(ValidationError, match="fill"):
        lake.predictor("clf", load=load, fill="zero")
