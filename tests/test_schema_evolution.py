"""Schema evolution of offline groups: add_columns (metadata only), widen and drop_columns
(current files rewritten); every earlier version keeps its columns and types, in lakecore and
in deltalake and polars; datasets recreate; bad changes leave the lake as it was."""

import datetime as dt

import deltalake
import polars as pl
import pyarrow as pa
import pytest

import lakecore
from lakecore.errors import LakeError, SchemaError
from tests.lake_state import lake_digest

TS = pa.timestamp("us", "UTC")
DAY = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


def group(lake, **columns):
    fg = lake.create_feature_group("g", primary_key="id", event_time="at")
    fg.insert(pa.table({"id": [1, 2], "at": pa.array([DAY, DAY], TS), **columns}))
    return fg


def rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (r["id"], r["at"]))


def every_version_agrees(fg, expected: dict[int, pa.Table]) -> None:
    """lakecore, deltalake and polars read each version with the columns and rows it had."""
    for version, table in expected.items():
        ours = fg.read(as_of=version)
        assert ours.schema == table.schema, version
        assert rows(ours) == rows(table), version
        theirs = deltalake.DeltaTable(fg.location, version=version).to_pyarrow_table()
        assert theirs.column_names == table.column_names, version
        assert rows(theirs.select(table.column_names)) == rows(
            table.cast(theirs.select(table.column_names).schema)), version
        polars = pl.read_delta(fg.location, version=version)
        assert polars.columns == table.column_names, version
        assert polars.height == table.num_rows


def test_add_columns_rewrites_nothing_and_old_rows_read_nulls(lake):
    fg = group(lake, x=[1.0, 2.0])
    before = fg.read()
    files = set(fg._table.snapshot().files)
    commit = fg.add_columns([pa.field("city", pa.string()), pa.field("n", pa.int32())])
    assert (commit.operation, commit.version, commit.rows_added) == ("add_columns", 1, 0)
    assert set(fg._table.snapshot().files) == files            # no data rewritten
    now = fg.read()
    assert now.column_names == ["id", "at", "x", "city", "n"]
    assert now.column("city").to_pylist() == [None, None]
    assert now.schema.field("n").type == pa.int32()
    with pytest.raises(SchemaError, match="missing column"):
        fg.insert({"id": [3], "at": pa.array([DAY], TS), "x": [3.0]})
    fg.insert({"id": [3], "at": pa.array([DAY], TS), "x": [3.0], "city": ["Oslo"], "n": [7]})
    every_version_agrees(fg, {0: before, 1: now, 2: fg.read()})
    assert [c.operation for c in fg.history()] == ["insert", "add_columns", "insert"]
    assert lake.audit_log()[-2].op == "add_columns"
    assert lake.verify().ok, lake.verify().problems


def test_inserts_that_need_evolution_say_which_call_evolves(lake):
    fg = group(lake, x=pa.array([1, 2], pa.int64()))
    with pytest.raises(SchemaError, match=r"'new_feat' are not in the schema.*add_columns"):
        fg.insert({"id": [3], "at": pa.array([DAY], TS), "x": [3], "new_feat": [1.0]})
    with pytest.raises(SchemaError, match=r"fg.widen\('x', pa.float64\(\)\)"):
        fg.insert({"id": [3], "at": pa.array([DAY], TS), "x": [float("nan")]})
    fg.widen("x", pa.float64())
    fg.insert({"id": [3], "at": pa.array([DAY], TS), "x": [float("nan")]})
    assert fg.read().num_rows == 3


@pytest.mark.parametrize("source, target, values", [
    (pa.int8(), pa.int16(), [1, -2]),
    (pa.int16(), pa.int32(), [300, -2]),
    (pa.int32(), pa.int64(), [2**31 - 1, -2]),
    (pa.int8(), pa.int64(), [1, None]),
    (pa.int64(), pa.float64(), [2**53, -5]),
    (pa.float32(), pa.float64(), [1.5, None]),
    (pa.date32(), TS, [dt.date(2026, 1, 2), dt.date(2020, 2, 29)]),
    (pa.string(), pa.large_string(), ["a", None]),
])
def test_widen_keeps_every_value_and_old_versions_keep_the_old_type(lake, source, target,
                                                                    values):
    fg = group(lake, x=pa.array(values, source))
    fg.insert(pa.table({"id": [5], "at": pa.array([DAY], TS), "x": pa.array([values[0]], source)}))
    old = fg.read()
    commit = fg.widen("x", target)
    assert commit.operation == "widen" and commit.rows_added == 0
    now = fg.read()
    assert now.schema.field("x").type == target
    assert rows(now) == rows(old.cast(now.schema))
    assert fg.read(as_of=1).schema.field("x").type == source
    every_version_agrees(fg, {1: old, 2: now})
    assert lake.verify().ok, lake.verify().problems


@pytest.mark.parametrize("source, target", [
    (pa.int64(), pa.int32()), (pa.float64(), pa.float32()), (pa.float64(), pa.int64()),
    (pa.string(), pa.int64()), (pa.int32(), pa.string()), (pa.int32(), pa.int32()),
])
def test_a_widening_that_could_lose_values_is_refused_and_changes_nothing(lake, source,
                                                                          target):
    fg = group(lake, x=pa.array([1, 2], pa.int64()).cast(source))
    before = lake_digest(lake.path)
    with pytest.raises(SchemaError, match="'x'"):
        fg.widen("x", target)
    assert lake_digest(lake.path) == before


def test_integers_float64_cannot_hold_exactly_are_refused(lake):
    fg = group(lake, x=pa.array([2**53 + 1, 0], pa.int64()))
    before = lake_digest(lake.path)
    with pytest.raises(SchemaError, match="2\\*\\*53"):
        fg.widen("x", pa.float64())
    assert lake_digest(lake.path) == before
    with pytest.raises(SchemaError, match="primary key or event_time"):
        fg.widen("id", pa.float64())


def test_drop_columns_rewrites_the_current_files_and_keeps_history(lake):
    fg = group(lake, x=[1.0, 2.0], tmp=["a", "b"])
    old = fg.read()
    commit = fg.drop_columns(["tmp"])
    assert commit.operation == "drop_columns"
    assert fg.read().column_names == ["id", "at", "x"]
    every_version_agrees(fg, {0: old, 1: fg.read()})
    for bad in (["id"], ["at"], ["nope"], []):
        before = lake_digest(lake.path)
        with pytest.raises(SchemaError):
            fg.drop_columns(bad)
        assert lake_digest(lake.path) == before
    assert lake.verify().ok, lake.verify().problems


def test_views_and_datasets_keep_working_and_protect_what_they_select(lake):
    fg = group(lake, x=[1.0, 2.0], y=[3, 4], spare=[0.5, 0.6])
    view = lake.create_feature_view("v", query=fg.select(["x", "y"]))
    spine = {"id": [1, 2], "at": pa.array([DAY + dt.timedelta(1)] * 2, TS)}
    td = view.create_training_data(spine=spine)
    before = lake_digest(lake.path)
    with pytest.raises(LakeError, match="feature view 'v'"):
        fg.drop_columns(["x"])
    assert lake_digest(lake.path) == before
    fg.add_columns([pa.field("z", pa.float64())])
    fg.widen("y", pa.float64())
    fg.drop_columns(["spare"])
    fg.compact()
    assert td.recreate().hash == td.hash
    batch = view.batch_data(spine=spine)
    assert batch.column("x").to_pylist() == [1.0, 2.0]
    assert batch.column("y").to_pylist() == [3.0, 4.0]
    assert view.create_training_data(spine=spine).read().column("y").type == pa.float64()
    assert lake.verify().ok, lake.verify().problems


def online_group(lake):
    fg = lake.create_feature_group("o", primary_key="id", event_time="at", online=True)
    fg.insert(pa.table({"id": [1, 2], "at": pa.array([DAY, DAY], TS),
                        "n": pa.array([1, 2], pa.int32()), "s": ["a", "b"]}))
    return fg


def online_rows(fg, ids) -> list[dict]:
    table = fg.online_read({"id": ids})
    return [{k: v for k, v in r.items() if k != "at"} for r in table.to_pylist()]


def test_online_groups_evolve_and_serve_the_new_schema(lake):
    fg = online_group(lake)
    view = lake.create_feature_view("v", query=fg.select(["n"]))
    assert view.feature_vector({"id": 2}) == {"n": 2}
    fg.add_columns([pa.field("w", pa.float64()), pa.field("tag", pa.string())])
    assert online_rows(fg, [1, 2]) == [{"id": 1, "n": 1, "s": "a", "w": None, "tag": None},
                                       {"id": 2, "n": 2, "s": "b", "w": None, "tag": None}]
    fg.insert({"id": [3], "at": pa.array([DAY], TS), "n": pa.array([3], pa.int32()),
               "s": ["c"], "w": [0.5], "tag": ["x"]})
    fg.widen("n", pa.int64())
    fg.widen("s", pa.large_string())
    fg.drop_columns(["tag"])
    assert online_rows(fg, [3, 1, 9]) == [{"id": 3, "n": 3, "s": "c", "w": 0.5},
                                          {"id": 1, "n": 1, "s": "a", "w": None},
                                          {"id": 9, "n": None, "s": None, "w": None}]
    assert fg.online_read({"id": [3]}).schema.field("n").type == pa.int64()
    assert view.feature_vector({"id": 3}) == {"n": 3}
    assert view.feature_vectors({"id": [1, 3]}).column("n").to_pylist() == [1, 3]
    assert lake.verify().ok, lake.verify().problems


READER = """
import sys, lakecore
lake = lakecore.open(sys.argv[1], readonly=True)
fg, view = lake.feature_group("o"), lake.feature_view("v")
print(fg.online_read({"id": [1]}).to_pylist()[0]["n"], view.feature_vector({"id": 1}), flush=True)
sys.stdin.readline()                              # the writer changes the schema meanwhile
row = fg.online_read({"id": [1, 3]}).to_pylist()
print(row[0]["n"], row[1]["w"], view.feature_vector({"id": 3}), flush=True)
"""


def test_a_reader_in_another_process_follows_a_schema_change(lake):
    import subprocess
    import sys

    fg = online_group(lake)
    lake.create_feature_view("v", query=fg.select(["n"]))
    reader = subprocess.Popen([sys.executable, "-c", READER, lake.path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().split() == ["1", "{'n':", "1}"]
    fg.add_columns([pa.field("w", pa.float64())])
    fg.widen("n", pa.int64())
    fg.insert({"id": [3], "at": pa.array([DAY], TS), "n": [30], "s": ["c"], "w": [0.5]})
    out, _ = reader.communicate("go\n", timeout=120)
    assert out.split() == ["1", "0.5", "{'n':", "30}"]


def test_a_writer_killed_before_the_online_rewrite_leaves_rows_that_read_right(lake,
                                                                           monkeypatch):
    from lakecore.online.store import OnlineStore

    fg = online_group(lake)
    real = OnlineStore.apply_parts

    def killed(self, *args, **kwargs):
        if kwargs.get("clear"):
            raise KeyboardInterrupt("killed")       # after the offline commit
        return real(self, *args, **kwargs)
    monkeypatch.setattr(OnlineStore, "apply_parts", killed)
    with pytest.raises(KeyboardInterrupt):
        fg.add_columns([pa.field("w", pa.float64())])
    monkeypatch.undo()
    with lakecore.open(lake.path, readonly=True) as reader:     # rows still in the old layout
        assert online_rows(reader.feature_group("o"), [1]) == [{"id": 1, "n": 1, "s": "a",
                                                                "w": None}]
    with lakecore.open(lake.path) as again:                     # rewritten by the next open
        assert online_rows(again.feature_group("o"), [2]) == [{"id": 2, "n": 2, "s": "b",
                                                               "w": None}]
        assert again.verify().ok, again.verify().problems


# -- a stateful test: changes of rows and of schema interleaved, every version checked ------
from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402

_WIDER = {pa.int32(): pa.int64(), pa.int64(): pa.float64(), pa.float32(): pa.float64(),
          pa.string(): pa.large_string()}
_NEW_TYPES = [pa.int32(), pa.float32(), pa.string()]


def _value(t: pa.DataType, n: int):
    if t in (pa.string(), pa.large_string()):
        return f"s{n}"
    if pa.types.is_floating(t):
        return n / 4
    return n


class SchemaMachine(RuleBasedStateMachine):
    """A model of the table: its columns (name -> type) and rows (key -> values) after every
    commit; after each step every version reads as the model says (and, online, the latest
    row of every id)."""

    online = False

    def __init__(self):
        super().__init__()
        import tempfile

        self.path = tempfile.mkdtemp()
        self.lake = lakecore.open(self.path)
        self.fg = self.lake.create_feature_group("g", primary_key="id", event_time="at",
                                                 online=self.online)
        self.columns: dict[str, pa.DataType] = {"f0": pa.int32()}
        self.rows: dict[tuple, dict] = {}
        self.versions: list[tuple[dict, dict]] = []
        self.counter = 0

    def teardown(self):
        import shutil

        try:        # other engines read every version as the model says, too
            for version, (columns, stored) in enumerate(self.versions):
                theirs = deltalake.DeltaTable(self.fg.location, version=version)
                table = theirs.to_pyarrow_table()
                assert table.column_names == ["id", "at", *columns], version
                got = {(r["id"], (r["at"] - DAY).days): {c: r[c] for c in columns}
                       for r in table.to_pylist()}
                assert got == stored, version
                assert pl.read_delta(self.fg.location, version=version).height == len(stored)
        finally:
            self.lake.close()
            shutil.rmtree(self.path, ignore_errors=True)

    def committed(self):
        self.versions.append((dict(self.columns), {k: dict(v) for k, v in self.rows.items()}))
        added = self.fg.history()[len(self.versions):]          # merges the call added
        assert [c.operation for c in added] in ([], ["compact"])
        self.versions.extend(self.versions[-1] for _ in added)

    @rule(keys=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2)), min_size=1,
                        max_size=4), nulls=st.booleans())
    def insert(self, keys, nulls):
        data = {"id": [k[0] for k in keys],
                "at": pa.array([DAY + dt.timedelta(days=k[1]) for k in keys], TS)}
        batch = {}
        for i, key in enumerate(keys):
            self.counter += 1
            batch[key] = {c: None if nulls and i == 0 else _value(t, self.counter)
                          for c, t in self.columns.items()}
        for c, t in self.columns.items():
            data[c] = pa.array([batch[k][c] for k in keys], t)
        self.fg.insert(pa.table(data))
        self.rows.update(batch)
        self.committed()

    @precondition(lambda self: self.rows)
    @rule(ids=st.lists(st.integers(0, 5), min_size=1, max_size=2))
    def delete(self, ids):
        if self.fg.delete({"id": ids}) is None:
            assert not any(k[0] in ids for k in self.rows)
            return
        self.rows = {k: v for k, v in self.rows.items() if k[0] not in ids}
        self.committed()

    @precondition(lambda self: self.versions)
    @rule()
    def compact(self):
        self.fg.compact()
        self.committed()

    @precondition(lambda self: self.versions and len(self.columns) < 5)
    @rule(t=st.sampled_from(_NEW_TYPES))
    def add_column(self, t):
        self.counter += 1
        name = f"f{self.counter}"
        self.fg.add_columns([pa.field(name, t)])
        self.columns[name] = t
        for values in self.rows.values():
            values[name] = None
        self.committed()

    @precondition(lambda self: self.versions
                  and any(t in _WIDER for t in self.columns.values()))
    @rule(data=st.data())
    def widen(self, data):
        name = data.draw(st.sampled_from([c for c, t in self.columns.items() if t in _WIDER]))
        self.fg.widen(name, _WIDER[self.columns[name]])
        self.columns[name] = _WIDER[self.columns[name]]
        self.committed()

    @precondition(lambda self: self.versions and len(self.columns) > 1)
    @rule(data=st.data())
    def drop(self, data):
        name = data.draw(st.sampled_from(sorted(self.columns)))
        self.fg.drop_columns([name])
        del self.columns[name]
        for values in self.rows.values():
            del values[name]
        self.committed()

    @invariant()
    def every_version_reads_as_modelled(self):
        assert len(self.fg.history()) == len(self.versions)
        for version, (columns, stored) in enumerate(self.versions):
            table = self.fg.read(as_of=version)
            assert table.column_names == ["id", "at", *columns], version
            assert [table.schema.field(c).type for c in columns] == list(columns.values())
            got = {(r["id"], (r["at"] - DAY).days): {c: r[c] for c in columns}
                   for r in table.to_pylist()}
            assert got == stored, version


    @invariant()
    def online_holds_the_latest_row_of_each_id(self):
        if not self.online or not self.versions:
            return
        latest: dict[int, tuple] = {}
        for (i, day), values in self.rows.items():
            if i not in latest or day > latest[i][0]:
                latest[i] = (day, values)
        ids = list(range(6))
        table = self.fg.online_read({"id": ids})
        assert table.column_names == ["id", "at", *self.columns]
        for i, row in zip(ids, table.to_pylist()):
            expected = latest.get(i, (None, dict.fromkeys(self.columns)))[1]
            assert {c: row[c] for c in self.columns} == expected, i


class OnlineSchemaMachine(SchemaMachine):
    online = True


TestSchemaChanges = SchemaMachine.TestCase
TestSchemaChanges.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
TestOnlineSchemaChanges = OnlineSchemaMachine.TestCase
TestOnlineSchemaChanges.settings = settings(max_examples=25, stateful_step_count=12,
                                            deadline=None)


def test_each_change_is_audited_and_shows_in_history_and_lineage(lake):
    fg = group(lake, x=pa.array([1, 2], pa.int32()), gone=[0.5, 0.6])
    fg.add_columns([pa.field("c", pa.string())])
    fg.widen("x", pa.int64())
    fg.drop_columns(["gone"])
    assert [c.operation for c in fg.history()] == ["insert", "add_columns", "widen",
                                                   "drop_columns"]
    events = [(e.op, e.target) for e in lake.audit_log()][-3:]
    assert events == [("add_columns", "fg:g@1#1"), ("widen", "fg:g@1#2"),
                      ("drop_columns", "fg:g@1#3")]
    td = lake.create_feature_view("v", query=fg.select_all()).create_training_data(
        spine={"id": [1], "at": pa.array([DAY], TS)})
    assert [n.ref for n in lake.lineage(td)] == ["fv:v@1", "fg:g@1#3"]
    assert [n.ref for n in lake.lineage("fg:g@1#1", "downstream")] == []
    assert lake.verify().ok


def test_a_damaged_layout_record_is_an_integrity_error(lake):
    from lakecore.online.store import LAYOUTS

    fg = online_group(lake)
    fg.add_columns([pa.field("w", pa.float64())])
    env = lake._ctx.online_store._env(create=False)
    with env.begin(write=True) as txn:
        layouts = env.open_db(LAYOUTS, txn=txn)
        txn.put(b"fg:o@1", b"12345678", db=layouts)
        txn.put(b"#12345678", b"not an arrow schema", db=layouts)
    with lakecore.open(lake.path, readonly=True) as reader:
        with pytest.raises(lakecore.IntegrityError, match="layout"):
            reader.feature_group("o").online_read({"id": [1]})
