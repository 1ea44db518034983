"""Feature views, transforms, training datasets (splits, recreate, manifest) and serving."""

import datetime as dt
import math
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lakecore
from lakecore import NotFoundError, SchemaError, ValidationError
from lakecore.training import transforms as tf

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
TS = pa.timestamp("us", "UTC")


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


# -- transforms ----------------------------------------------------------------------------------
def reference_fit(values: list, kind: str):
    """Plain Python statistics of the non-null, non-NaN values."""
    xs = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if kind == "standard_scaler":
        if not xs:
            return 0.0, 1.0
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
        return mean, std if std else 1.0
    if kind == "min_max_scaler":
        return (min(xs), (max(xs) - min(xs)) or 1.0) if xs else (0.0, 1.0)
    if kind == "robust_scaler":
        if not xs:
            return 0.0, 1.0
        q25, median, q75 = np.quantile(xs, [0.25, 0.5, 0.75])
        return float(median), float(q75 - q25) or 1.0
    return sorted(set(xs))


numbers = st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6), st.just(float("nan"))),
                   min_size=1, max_size=20)
categories = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), min_size=1,
                      max_size=20)


@given(train=numbers, serve=numbers, kind=st.sampled_from(tf.SCALERS))
def test_scalers_match_plain_python_and_the_row_path(train, serve, kind):
    fitted = tf.fit(pa.table({"x": pa.array(train, pa.float64())}), {"x": kind})
    center, scale = reference_fit(train, kind)
    assert math.isclose(fitted[0].center, center, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(fitted[0].scale, scale, rel_tol=1e-9, abs_tol=1e-9)
    batch = tf.apply(pa.table({"x": pa.array(serve, pa.float64())}), fitted).column("x").to_pylist()
    for value, got in zip(serve, batch):
        one = tf.RowTransformer(fitted)({"x": value})["x"]
        if value is None:
            assert got is None and one is None
        elif math.isnan(value):
            assert math.isnan(got) and math.isnan(one)
        else:
            assert got == one == (value - fitted[0].center) / fitted[0].scale   # bit for bit


@given(train=categories, serve=categories)
def test_encoders_match_plain_python_and_the_row_path(train, serve):
    train_column, serve_column = pa.array(train, pa.string()), pa.array(serve, pa.string())
    fitted = tf.fit(pa.table({"x": train_column, "y": train_column}),
                    {"x": "label_encoder", "y": "one_hot_encoder"})
    values = reference_fit(train, "label_encoder")
    assert fitted[0].values == values == fitted[1].values
    out = tf.apply(pa.table({"x": serve_column, "y": serve_column}), fitted)
    assert out.column_names == ["x"] + [f"y_{v}" for v in values]
    for i, value in enumerate(serve):
        code = None if value is None else (values.index(value) if value in values else -1)
        assert out.column("x")[i].as_py() == code
        for v in values:
            assert out.column(f"y_{v}")[i].as_py() == (None if value is None else int(value == v))
        assert tf.RowTransformer(fitted)({"x": value, "y": value}) == out.slice(i, 1).to_pylist()[0]


# -- a small lake ---------------------------------------------------------------------------------
@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


def fraud_lake(lake, n=200, online=True):
    rng = np.random.default_rng(3)
    tx = lake.create_feature_group("tx", primary_key="card", event_time="at", online=online)
    tx.insert({"card": rng.integers(0, 50, n), "at": pa.array([ago(float(d)) for d in
                                                                 rng.uniform(1, 30, n)], TS),
               "amount": rng.normal(100, 20, n), "kind": rng.choice(["web", "pos", "atm"], n)})
    profile = lake.create_feature_group("profile", primary_key="card", online=online)
    profile.insert({"card": np.arange(50), "segment": rng.integers(0, 3, 50)})
    view = lake.create_feature_view(
        "fraud", query=tx.select_all().join(profile.select(["segment"]), prefix="p_"),
        labels=["is_fraud"], transforms={"amount": "standard_scaler", "kind": "one_hot_encoder",
                                         "p_segment": "label_encoder"})
    spine = pa.table({"card": rng.integers(0, 55, 300),
                      "at": pa.array([ago(float(d)) for d in rng.uniform(0, 30, 300)], TS),
                      "is_fraud": rng.integers(0, 2, 300)})
    return tx, profile, view, spine


def test_training_data_reads_back_and_survives_reopening(lake, tmp_path):
    tx, profile, view, spine = fraud_lake(lake)
    td = view.create_training_data(spine=spine, split={"train": 0.7, "test": 0.3}, seed=5)
    assert td.version == 1 and td.labels == ["is_fraud"]
    assert td.splits == {"train": 210, "test": 90}
    assert td.features == ["amount", "kind_atm", "kind_pos", "kind_web", "p_segment"]
    train = td.read("train")
    assert train.column_names == td.features + ["is_fraud"]
    assert abs(np.mean(train.column("amount").drop_null().to_numpy())) < 1e-9   # fitted on train
    everything = td.read(with_keys=True)
    assert everything.num_rows == 300 and everything.column_names[:2] == ["card", "at"]
    assert {(s.group, s.commit) for s in td.sources} == {("tx", 0), ("profile", 0)}
    with pytest.raises(ValidationError, match="'validation'"):
        td.read("validation")
    with lakecore.open(tmp_path / "lake") as again:
        same = again.feature_view("fraud").training_data(1)
        assert same.hash == td.hash and same.read("test").equals(td.read("test"))


def test_splits_are_reproducible_by_seed_and_time_splits_are_half_open(lake):
    tx, profile, view, spine = fraud_lake(lake)
    keys = lambda td, split: td.read(split, with_keys=True).select(["card", "at"]).to_pylist()  # noqa: E731
    a = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5}, seed=1)
    b = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5}, seed=1)
    c = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5}, seed=2)
    assert keys(a, "train") == keys(b, "train") and a.hash == b.hash
    assert keys(a, "train") != keys(c, "train") and a.hash != c.hash
    cut = ago(10)
    timed = view.create_training_data(spine=spine, split={"train": (ago(40), cut),
                                                          "test": (cut, NOW)})
    train_times = timed.read("train", with_keys=True).column("at").to_pylist()
    test_times = timed.read("test", with_keys=True).column("at").to_pylist()
    assert all(t < cut for t in train_times) and all(t >= cut for t in test_times)
    assert len(train_times) + len(test_times) == spine.num_rows


def test_recreate_gives_the_same_hash_after_later_changes(lake):
    tx, profile, view, spine = fraud_lake(lake)
    td = view.create_training_data(spine=spine, split={"train": 0.8, "test": 0.2})
    tx.insert({"card": [1, 2], "at": pa.array([ago(5), ago(2)], TS), "amount": [1e6, 2e6],
               "kind": ["web", "web"]})
    profile.delete({"card": [1, 2, 3]})
    tx.compact()
    again = td.recreate()
    assert again.hash == td.hash
    assert again.read().equals(td.read())
    newer = view.create_training_data(spine=spine, split={"train": 0.8, "test": 0.2})
    assert newer.hash != td.hash
    plain = lake.create_feature_view("plain", query=tx.select_all(),
                                     transforms={"amount": "robust_scaler"})
    without_spine = plain.create_training_data(start_time=ago(20), split={"a": 0.5, "b": 0.5})
    assert without_spine.recreate().hash == without_spine.hash


def test_serving_applies_the_training_transforms(lake):
    tx, profile, view, spine = fraud_lake(lake)
    now_spine = pa.table({"card": np.arange(55), "at": pa.array([NOW] * 55, TS),
                          "is_fraud": np.zeros(55, np.int64)})
    td = view.create_training_data(spine=now_spine)
    training = td.read().drop_columns(["is_fraud"])
    served = view.feature_vectors({"card": np.arange(55)})
    assert served.column_names == td.features
    assert served.equals(training)
    for card in [0, 7, 54]:
        one = view.feature_vector({"card": card})
        assert list(one) == td.features
        assert one == training.slice(card, 1).to_pylist()[0]
    batch = view.batch_data(spine=now_spine.drop_columns(["is_fraud"]))
    assert batch.column_names == ["card", "at"] + td.features
    assert batch.drop_columns(["card", "at"]).equals(training)


def profile_names(lake):
    names = lake.create_feature_group("names", primary_key="card")
    names.insert({"card": [1], "segment": ["gold"]})
    return names.select(["segment"])


def test_feature_view_errors(lake):
    tx, profile, view, spine = fraud_lake(lake, online=False)
    with pytest.raises(SchemaError, match="missing join key column 'card'"):
        view.create_training_data(spine={"account": [1]})
    with pytest.raises(SchemaError, match="labels: no column 'is_fraud'"):
        view.create_training_data()
    with pytest.raises(ValidationError, match="unknown transform 'zscore'"):
        lake.create_feature_view("bad", query=tx.select_all(), transforms={"amount": "zscore"})
    for column, kind in [("kind", "standard_scaler"), ("kind", "robust_scaler"),
                         ("amount", "label_encoder"), ("amount", "one_hot_encoder")]:
        with pytest.raises(SchemaError, match=f"{column!r} has type .*{kind}"):
            lake.create_feature_view("bad", query=tx.select_all(), transforms={column: kind})
    with pytest.raises(SchemaError, match="'p_segment' has type"):   # a joined group's column
        lake.create_feature_view("bad", transforms={"p_segment": "min_max_scaler"},
                                 query=tx.select_all().join(profile_names(lake), prefix="p_"))
    assert [v.name for v in lake.feature_views()] == ["fraud"]
    with pytest.raises(SchemaError, match="'nope' is not a feature"):
        lake.create_feature_view("bad", query=tx.select_all(), transforms={"nope": "min_max_scaler"})
    with pytest.raises(ValidationError, match="sum to 1"):
        view.create_training_data(spine=spine, split={"train": 0.7, "test": 0.7})
    with pytest.raises(SchemaError, match="no column 'at'.*spine_time"):
        view.create_training_data(spine=spine.drop_columns(["at"]))
    with pytest.raises(TypeError, match="latest"):
        view.create_training_data(spine=spine, latest=True)     # training data is never latest
    plain = lake.create_feature_view("plain", query=profile.select_all(), labels=["is_fraud"])
    with pytest.raises(SchemaError, match="time split"):
        plain.create_training_data(spine=spine.drop_columns(["at"]),
                                   split={"train": (ago(9), ago(1))})
    assert not (Path(lake.path) / "training_data").exists()     # failed calls leave nothing
    view.create_training_data(spine=spine)
    with pytest.raises(ValidationError, match="'tx' is not online"):
        view.feature_vectors({"card": [1]})
    with pytest.raises(NotFoundError):
        view.training_data(7)
    with pytest.raises(lakecore.AlreadyExistsError):
        lake.create_feature_view("fraud", query=tx.select_all())


def test_feature_vector_paths(lake):
    tx = lake.create_feature_group("tx", primary_key="card", event_time="at", online=True)
    tx.insert({"card": [1, 2], "at": pa.array([ago(1), ago(1)], TS), "merchant": [7, 8],
               "amount": [5.0, 6.0]})
    merchants = lake.create_feature_group("merchants", primary_key="merchant_id", online=True)
    merchants.insert({"merchant_id": [7], "country": ["FR"]})
    view = lake.create_feature_view("v", query=tx.select_all().join(
        merchants.select_all(), on="merchant"))
    # a join on a feature of the first group: read one group after the other
    assert view.feature_vector({"card": 1}) == {"merchant": 7, "amount": 5.0, "country": "FR"}
    assert view.feature_vector({"card": 2}) == {"merchant": 8, "amount": 6.0, "country": None}
    assert view.feature_vector({"card": 3}) == {"merchant": None, "amount": None, "country": None}
    batch = view.feature_vectors({"card": [3, 1, 2]})
    assert batch.to_pylist() == [{"merchant": None, "amount": None, "country": None},
                                 {"merchant": 7, "amount": 5.0, "country": "FR"},
                                 {"merchant": 8, "amount": 6.0, "country": None}]
    with pytest.raises(SchemaError, match="'card'"):
        view.feature_vector({"card": "one"})
    with pytest.raises(SchemaError, match="'card'"):
        view.feature_vector({"account": 1})
    same_key = lake.create_feature_view("w", query=tx.select(["amount"]).join(
        tx.select(["merchant"]), prefix="again_"))
    assert same_key.feature_vector({"card": 2}) == {"amount": 6.0, "again_merchant": 8}


def test_feature_vector_and_feature_vectors_agree_on_given_values(lake):
    tx = lake.create_feature_group("tx", primary_key="card", event_time="at", online=True)
    tx.insert({"card": [1, 2], "at": pa.array([ago(1), ago(1)], TS), "merchant": [7, 8],
               "amount": [5.0, 6.0]})
    merchants = lake.create_feature_group("merchants", primary_key="merchant_id", online=True)
    merchants.insert({"merchant_id": [7, 8], "country": ["FR", "DE"]})
    chained = lake.create_feature_view("v", query=tx.select_all().join(
        merchants.select_all(), on="merchant"))
    flat = lake.create_feature_view("w", query=tx.select_all())
    requests = [
        (flat, {"card": 1}, {"merchant": 7, "amount": 5.0}),
        (flat, {"card": 1, "amount": 9.5}, {"merchant": 7, "amount": 9.5}),
        (flat, {"card": 1, "note": "x"}, {"merchant": 7, "amount": 5.0}),
        (chained, {"card": 1}, {"merchant": 7, "amount": 5.0, "country": "FR"}),
        # a value the caller gives is used, also as the key of a later group
        (chained, {"card": 1, "merchant": 8}, {"merchant": 8, "amount": 5.0, "country": "DE"}),
        (chained, {"card": 9, "merchant": 7}, {"merchant": 7, "amount": None, "country": "FR"}),
    ]
    for view, key, expected in requests:
        assert view.feature_vector(key) == expected, key
        batch = view.feature_vectors({k: [v] for k, v in key.items()})
        assert batch.to_pylist() == [expected], key
    assert chained.feature_vector({"card": np.int64(2)}) == \
        {"merchant": 8, "amount": 6.0, "country": "DE"}         # numpy integers are integers
    for view in (flat, chained):
        with pytest.raises(SchemaError, match="keys: missing join key column 'card'"):
            view.feature_vectors({"account": [1]})
        with pytest.raises(SchemaError, match="key: missing join key column 'card'"):
            view.feature_vector({"account": 1})


def test_feature_vector_in_a_forked_child(lake):
    import os

    tx = lake.create_feature_group("tx", primary_key="card", online=True)
    tx.insert({"card": [1], "amount": [5.0]})
    view = lake.create_feature_view("v", query=tx.select_all())
    assert view.feature_vector({"card": 1}) == {"amount": 5.0}
    pid = os.fork()
    if pid == 0:
        ok = view.feature_vector({"card": 1}) == {"amount": 5.0}
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_big_splits_are_written_as_several_files(lake, monkeypatch):
    from lakecore.training import datasets as training_data

    tx, profile, view, spine = fraud_lake(lake)
    whole = view.create_training_data(spine=spine, split={"train": 0.6, "test": 0.4}, seed=3)
    monkeypatch.setattr(training_data, "PART_ROWS", 64)
    parted = view.create_training_data(spine=spine, split={"train": 0.6, "test": 0.4}, seed=3)
    assert [len(f) for f in parted._spec.files.values()] == [3, 2]     # 180 and 120 rows
    assert parted.read("train").equals(whole.read("train"))
    assert parted.splits == whole.splits == {"train": 180, "test": 120}
    assert parted.recreate().hash == parted.hash != whole.hash


def test_training_data_and_batch_data_take_the_spines_time_column_by_name(lake):
    tx, profile, view, spine = fraud_lake(lake)
    renamed = spine.rename_columns(["card", "label_time", "is_fraud"])
    td = view.create_training_data(spine=renamed, spine_time="label_time",
                                   split={"train": (ago(40), ago(10)), "test": (ago(10), NOW)})
    reference = view.create_training_data(spine=spine, split={"train": (ago(40), ago(10)),
                                                              "test": (ago(10), NOW)})
    got, want = td.read(with_keys=True), reference.read(with_keys=True)
    assert got.column_names == want.column_names[:1] + ["label_time"] + want.column_names[2:]
    assert got.rename_columns(want.column_names).equals(want)
    assert td.splits == reference.splits
    assert td.recreate().hash == td.hash != reference.hash
    # batch data: the same rule, and latest=True for the latest rows
    features = view.batch_data(spine=renamed.drop_columns(["is_fraud"]),
                               spine_time="label_time", training_data=td)
    assert features.column_names[:2] == ["card", "label_time"]
    with pytest.raises(SchemaError, match="no column 'at'.*latest=True"):
        view.batch_data(spine=renamed.drop_columns(["is_fraud"]), training_data=td)
    latest = view.batch_data(spine={"card": [1, 2]}, latest=True, training_data=td)
    for i, card in enumerate([1, 2]):
        rows = tx.read().filter(pa.compute.equal(tx.read().column("card"), card))
        newest = rows.sort_by([("at", "descending")]).slice(0, 1)
        scaler = next(f for f in td._spec.transforms if f.column == "amount")
        assert latest.column("amount")[i].as_py() == pytest.approx(
            (newest.column("amount")[0].as_py() - scaler.center) / scaler.scale)


def test_recreate_gives_the_same_hash_after_reopening_whatever_the_transforms_order(tmp_path):
    """The catalog stores a view's transforms sorted by column; datasets are fitted in that
    order, and recreate() fits in the order of the dataset it rebuilds (datasets made by
    earlier versions fitted in the order the transforms were given)."""
    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1, 2, 3], "z": [1.0, 2.0, 4.0], "a": [3.0, 1.0, 0.0]})
        view = lake.create_feature_view("v", query=fg.select_all(),
                                        transforms={"z": "min_max_scaler", "a": "standard_scaler"})
        made = view.create_training_data()
        assert [f.column for f in made._spec.transforms] == ["a", "z"]
        assert made.recreate().hash == made.hash
    with lakecore.open(path) as lake:
        again = lake.feature_view("v").training_data(1)
        assert again.recreate().hash == made.hash
        # a dataset whose transforms were fitted in another order keeps that order
        from lakecore.training import datasets
        spec = again._spec
        flipped = msgspec.structs.replace(spec, transforms=list(reversed(spec.transforms)))
        flipped = msgspec.structs.replace(flipped, hash=datasets.content_hash(flipped))
        rebuilt = type(again)(again._ctx, flipped).recreate()
        assert [f.column for f in rebuilt._spec.transforms] == ["z", "a"]
        assert rebuilt.hash == flipped.hash
