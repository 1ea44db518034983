"""A stateful property test of the offline store against a plain Python model: random upserts
(overlapping keys and times, duplicates within a batch), deletes, compactions and reopens; after
every step the latest table and every past version equal the model."""

import datetime as dt
import shutil
import tempfile

import pyarrow as pa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lakecore

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
ids = st.integers(0, 6)
times = st.integers(0, 3)


class OfflineStoreMachine(RuleBasedStateMachine):
    with_event_time = True

    def __init__(self):
        super().__init__()
        self.path = tempfile.mkdtemp()
        self.lake = lakecore.open(self.path)
        self.fg = self.lake.create_feature_group(
            "g", primary_key="id", event_time="ts" if self.with_event_time else None)
        self.model: dict[tuple, float] = {}
        self.versions: list[dict[tuple, float]] = []

    def teardown(self):
        self.lake.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def key(self, i, t):
        return (i, t) if self.with_event_time else (i,)

    def rows(self, model):
        return sorted(tuple(k) + (v,) for k, v in model.items())

    def table_rows(self, table):
        out = []
        for r in table.to_pylist():
            key = (r["id"], (r["ts"] - T0).days) if self.with_event_time else (r["id"],)
            out.append(key + (r["x"],))
        return sorted(out)

    @rule(batch=st.lists(st.tuples(ids, times, st.floats(-1e6, 1e6)), min_size=0, max_size=12))
    def insert(self, batch):
        data = {"id": [b[0] for b in batch], "x": [b[2] for b in batch]}
        if self.with_event_time:
            data["ts"] = pa.array([T0 + dt.timedelta(days=b[1]) for b in batch],
                                  pa.timestamp("us", "UTC"))
        table = pa.table(data, schema=pa.schema(
            [("id", pa.int64()), ("x", pa.float64())]
            + ([("ts", pa.timestamp("us", "UTC"))] if self.with_event_time else [])))
        replaced = {self.key(i, t) for i, t, _ in batch} & set(self.model)
        commit = self.fg.insert(table)
        if not batch:                   # an empty insert makes no commit
            assert commit is None and len(self.fg.history()) == len(self.versions)
            return
        for i, t, x in batch:
            self.model[self.key(i, t)] = x
        assert commit.version == len(self.versions)
        assert commit.rows_added == len({self.key(i, t) for i, t, _ in batch})
        assert commit.rows_removed == len(replaced)
        self.versions.append(dict(self.model))
        self.merged_automatically()

    def merged_automatically(self):
        """The commits the same call added after its own: merges of small files, which
        change no row."""
        added = self.fg.history()[len(self.versions):]
        assert [c.operation for c in added] in ([], ["compact"])
        self.versions.extend(dict(self.model) for _ in added)

    @precondition(lambda self: self.versions)
    @rule(keys=st.lists(ids, max_size=4))
    def delete(self, keys):
        doomed = [k for k in self.model if k[0] in keys]
        commit = self.fg.delete(pa.table({"id": pa.array(keys, pa.int64())}))
        if not doomed:                  # no stored row has those keys: no commit
            assert commit is None and len(self.fg.history()) == len(self.versions)
            return
        assert commit.rows_removed == len(doomed)
        for k in doomed:
            del self.model[k]
        self.versions.append(dict(self.model))
        self.merged_automatically()

    @precondition(lambda self: self.versions)
    @rule()
    def compact(self):
        self.fg.compact()
        self.versions.append(dict(self.model))

    @rule()
    def reopen(self):
        self.lake.close()
        self.lake = lakecore.open(self.path)
        self.fg = self.lake.feature_group("g")

    @invariant()
    def latest_equals_model(self):
        assert self.table_rows(self.fg.read()) == self.rows(self.model)

    @invariant()
    def every_version_equals_its_model(self):
        history = self.fg.history()
        assert [c.version for c in history] == list(range(len(self.versions)))
        for v, model in enumerate(self.versions):
            assert self.table_rows(self.fg.read(as_of=v)) == self.rows(model)


class OfflineStoreWithoutEventTime(OfflineStoreMachine):
    with_event_time = False


TestOfflineStore = OfflineStoreMachine.TestCase
TestOfflineStore.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
TestOfflineStoreWithoutEventTime = OfflineStoreWithoutEventTime.TestCase
TestOfflineStoreWithoutEventTime.settings = settings(max_examples=15, stateful_step_count=15,
                                                     deadline=None)
