"""The online row codec against plain Python: every stored type, nulls at every level, the
key order LMDB relies on, and the newer-row rule."""

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecore._native import keycodec, valuecodec
from lakecore.online.codec import (
    _codec_inputs,
    decode_batch,
    encode_key,
    encode_keys,
    encode_keys_packed,
    encode_packed,
    encode_values,
)
from lakecore.online.layout import Layout
from tests import rowcodec_reference as reference

pytestmark = pytest.mark.native

TS = pa.timestamp("us", "UTC")
INT64 = st.integers(-(2**63), 2**63 - 1)
PY_MICROS = st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)  # datetime's range
FEATURE_TYPES = {
    "i8": (pa.int8(), st.integers(-128, 127)),
    "i16": (pa.int16(), st.integers(-(2**15), 2**15 - 1)),
    "i32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "i64": (pa.int64(), INT64),
    "f32": (pa.float32(), st.floats(width=32)),
    "f64": (pa.float64(), st.floats()),
    "b": (pa.bool_(), st.booleans()),
    "s": (pa.string(), st.text(max_size=12)),
    "bin": (pa.binary(), st.binary(max_size=12)),
    "d": (pa.date32(), st.dates()),
    "t": (TS, st.datetimes(timezones=st.just(dt.timezone.utc))),
}
LIST_TYPES = {f"l_{name}": (pa.list_(t), st.lists(st.one_of(st.none(), values), max_size=4))
              for name, (t, values) in FEATURE_TYPES.items()}
ALL_TYPES = {**FEATURE_TYPES, **LIST_TYPES}


def same(a, b) -> bool:
    """Equality where NaN equals NaN and -0.0 differs from 0.0 (bit-exact floats)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


@st.composite
def feature_table(draw):
    """A table with an int64 key ``id`` (unique), an event time ``ts`` and random features."""
    names = draw(st.lists(st.sampled_from(sorted(ALL_TYPES)), min_size=1, max_size=6, unique=True))
    n = draw(st.integers(0, 12))
    ids = draw(st.lists(INT64, min_size=n, max_size=n, unique=True))
    times = draw(st.lists(PY_MICROS, min_size=n, max_size=n))
    columns = {"id": pa.array(ids, pa.int64()), "ts": pa.array(times, pa.int64()).cast(TS)}
    for name in names:
        t, values = ALL_TYPES[name]
        columns[name] = pa.array(draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n)), t)
    table = pa.table(columns)
    if n > 2 and draw(st.booleans()):       # sliced inputs: offsets inside the buffers
        table = table.slice(1, n - 2)
    return table


def layout_of(table: pa.Table) -> Layout:
    return Layout.of(table.schema, ["id"], "ts")


@given(table=feature_table(), version=INT64)
def test_batches_round_trip_every_type(table, version):
    layout = layout_of(table)
    keys = encode_keys(table, layout)
    values = encode_values(layout, table, version)
    decoded = decode_batch(layout, keys, values, -(2**63))
    assert decoded.schema == table.schema
    for name in table.column_names:
        assert all(same(a, b) for a, b in zip(decoded.column(name).to_pylist(),
                                              table.column(name).to_pylist())), name


@given(table=feature_table())
def test_rows_decode_to_the_same_python_values(table):
    layout = layout_of(table)
    values = encode_values(layout, table, 0)
    features = [f.name for f in layout.features]
    expected = table.select(features).to_pylist()
    for value, row in zip(values, expected):
        decoded = valuecodec.decode_row(layout.codec, value, -(2**63))
        for j, convert in layout.converters:
            decoded[j] = None if decoded[j] is None else convert(decoded[j])
        assert all(same(decoded[j], row[name]) for j, name in enumerate(features))


@given(table=feature_table(), cut=PY_MICROS)
def test_missing_and_stale_rows_decode_as_nulls(table, cut):
    layout = layout_of(table)
    keys = encode_keys(table, layout)
    values = encode_values(layout, table, 0)
    present = [i % 2 == 0 for i in range(len(values))]
    decoded = decode_batch(layout, keys, [v if p else None for v, p in zip(values, present)], cut)
    times = table.column("ts").cast(pa.int64()).to_pylist()
    live = [p and t >= cut for p, t in zip(present, times)]
    assert decoded.column("id").to_pylist() == table.column("id").to_pylist()  # keys always
    for name in table.column_names[1:]:
        got, want = decoded.column(name).to_pylist(), table.column(name).to_pylist()
        assert all(same(g, w) if ok else g is None for g, w, ok in zip(got, want, live)), name


KEY_TYPES = {
    "int8": (pa.int8(), st.integers(-128, 127)),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "int64": (pa.int64(), INT64),
    "bool": (pa.bool_(), st.booleans()),
    "date": (pa.date32(), st.dates()),
    "timestamp": (TS, st.datetimes(timezones=st.just(dt.timezone.utc))),
    "string": (pa.string(), st.text(max_size=6)),
    "binary": (pa.binary(), st.binary(max_size=6)),
}


@given(kinds=st.lists(st.sampled_from(sorted(KEY_TYPES)), min_size=1, max_size=3), data=st.data())
def test_keys_encode_in_order_and_decode_back(kinds, data):
    """Integer keys sort numerically (what append mode relies on), one key encoded from
    Python values equals the batch encoding, and decoded batches give the keys back."""
    n = data.draw(st.integers(1, 10))
    names = [f"k{i}" for i in range(len(kinds))]
    columns = {name: pa.array(data.draw(st.lists(KEY_TYPES[kind][1], min_size=n, max_size=n)),
                              KEY_TYPES[kind][0]) for name, kind in zip(names, kinds)}
    table = pa.table({**columns, "v": pa.array(range(n), pa.float64())})
    layout = Layout.of(table.schema, names, None)
    keys = encode_keys(table, layout)
    rows = table.select(names).to_pylist()
    for key, row in zip(keys, rows):
        assert encode_key(layout, tuple(row[name] for name in names)) == key
    if all(kind not in ("string", "binary") for kind in kinds):
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        as_ints = [tuple((v - epoch) // dt.timedelta(microseconds=1) if isinstance(v, dt.datetime)
                         else v.toordinal() if isinstance(v, dt.date) else int(v)
                         for v in row.values()) for row in rows]
        assert sorted(range(n), key=keys.__getitem__) == sorted(range(n), key=as_ints.__getitem__)
    decoded = decode_batch(layout, keys, [None] * n, -(2**63))
    assert decoded.select(names).to_pylist() == rows


@given(pairs=st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 3),
                                st.one_of(st.none(), st.tuples(st.integers(-3, 3),
                                                               st.integers(0, 3)))), max_size=20))
def test_newer_rows_follows_time_then_commit(pairs):
    schema = pa.schema([("id", pa.int64()), ("ts", TS), ("v", pa.float64())])
    layout = Layout.of(schema, ["id"], "ts")

    def encoded(time, version):
        one = pa.table({"id": [0], "ts": pa.array([time], pa.int64()).cast(TS), "v": [0.0]},
                       schema=schema)
        return encode_values(layout, one, version)[0]

    values = [encoded(t, v) for t, v, _ in pairs]
    stored = [None if old is None else encoded(*old) for _, _, old in pairs]
    expected = [old is None or (t, v) >= old for t, v, old in pairs]
    assert valuecodec.newer_rows(values, stored).astype(bool).tolist() == expected


def test_big_batches_use_the_pooled_arena_and_survive_their_inputs():
    n = 5000
    table = pa.table({"id": pa.array(np.arange(n), pa.int64()),
                      "ts": pa.array(np.arange(n), pa.int64()).cast(TS),
                      "s": [f"value {i}" * 3 for i in range(n)],
                      "l": [[float(i)] * (i % 4) for i in range(n)]})
    layout = layout_of(table)
    keys = encode_keys(table, layout)
    values = [bytearray(v) for v in encode_values(layout, table, 1)]
    decoded = decode_batch(layout, keys, values, -(2**63))
    for v in values:                  # the batch owns its memory: clobber the inputs
        v[:] = b"\0" * len(v)
    del values, keys
    assert decoded.equals(pa.RecordBatch.from_pydict(table.to_pydict(), schema=table.schema))


# -- the stored byte format: the native encoders against a plain Python twin, and golden bytes
@given(table=feature_table(), version=INT64)
def test_values_are_the_specified_bytes(table, version):
    layout = layout_of(table)
    types = [f.type for f in layout.features]
    times = table.column("ts").cast(pa.int64()).to_pylist()
    rows = table.select([f.name for f in layout.features]).to_pylist()
    got = encode_values(layout, table, version)
    want = [reference.encode_value(t, version, types, list(row.values()))
            for t, row in zip(times, rows)]
    assert got == want


@given(table=feature_table(), version=INT64, threads=st.sampled_from([1, 2]))
def test_packed_values_are_the_specified_bytes_back_to_back(table, version, threads):
    """``encode_packed``: the same values as the reference, in one buffer with offsets, from
    read-only inputs, on one or two threads."""
    layout = layout_of(table)
    types = [f.type for f in layout.features]
    times = table.column("ts").cast(pa.int64()).to_pylist()
    rows = table.select([f.name for f in layout.features]).to_pylist()
    want = [reference.encode_value(t, version, types, list(row.values()))
            for t, row in zip(times, rows)]
    data, offsets = encode_packed(layout, table, version, threads)
    assert offsets.tolist() == [sum(map(len, want[:i])) for i in range(len(want) + 1)]
    assert data[:offsets[-1]].tobytes() == b"".join(want)
    times, columns = _codec_inputs(layout, table)
    for array in [times] + [a for column in columns for a in column]:
        array.flags.writeable = False
    data, offsets = valuecodec.encode_packed(layout.codec, times, version, columns,
                                             lambda size: np.zeros(size, np.uint8), threads)
    assert data.tobytes() == b"".join(want)


def test_packed_values_of_many_rows_match_one_value_per_row():
    """Enough rows for the parallel loops (20,000 and more), with strings and lists."""
    n = 30_000
    table = pa.table({"id": pa.array(np.arange(n), pa.int64()),
                      "ts": pa.array(np.arange(n), pa.int64()).cast(TS),
                      "s": [None if i % 7 == 0 else f"v{i}" * (i % 5) for i in range(n)],
                      "l": [[float(i)] * (i % 4) for i in range(n)],
                      "f": np.arange(n, dtype=np.float64)})
    layout = layout_of(table)
    data, offsets = encode_packed(layout, table, 3, 2)
    assert data[:offsets[-1]].tobytes() == b"".join(encode_values(layout, table, 3, 1))
    assert np.array_equal(np.diff(offsets), [len(v) for v in encode_values(layout, table, 3)])


def test_packed_values_refuse_a_short_buffer():
    table = pa.table({"id": [1], "ts": pa.array([0], pa.int64()).cast(TS), "v": [1.0]})
    layout = layout_of(table)
    times, columns = _codec_inputs(layout, table)
    with pytest.raises(ValueError, match="too small"):
        valuecodec.encode_packed(layout.codec, times, 0, columns,
                                 lambda size: np.zeros(size - 1, np.uint8))


@given(kinds=st.lists(st.sampled_from(sorted(KEY_TYPES)), min_size=1, max_size=3), data=st.data())
def test_keys_are_the_specified_bytes(kinds, data):
    names = [f"k{i}" for i in range(len(kinds))]
    types = [KEY_TYPES[k][0] for k in kinds]
    rows = data.draw(st.lists(st.tuples(*[KEY_TYPES[k][1] for k in kinds]), max_size=8))
    table = pa.table({n: pa.array([r[i] for r in rows], t)
                      for i, (n, t) in enumerate(zip(names, types))},
                     schema=pa.schema(list(zip(names, types))))
    layout = Layout.of(table.schema, names, None)
    want = [reference.encode_key(list(r), types) for r in rows]
    assert encode_keys(table, layout) == want
    packed = encode_keys_packed(table, layout)            # one buffer: the same bytes
    assert packed.data[:packed.offsets[-1]].tobytes() == b"".join(want)
    assert packed.tolist() == want
    if len(rows) > 2:                                     # sliced inputs too
        assert encode_keys_packed(table.slice(1, 2), layout).tolist() == want[1:3]


GOLDEN_SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("ts", TS),
                           ("score", pa.float64()), ("count", pa.int32()), ("flag", pa.bool_()),
                           ("day", pa.date32()), ("tags", pa.list_(pa.string())),
                           ("hist", pa.list_(pa.int16()))])
GOLDEN_ROWS = pa.table({
    "id": [-2, 7], "name": ["ab", "é"],
    "ts": pa.array([dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc), None], TS),
    "score": [1.5, None], "count": [None, -3], "flag": [True, None],
    "day": pa.array([dt.date(2026, 1, 2), dt.date(1969, 12, 31)], pa.date32()),
    "tags": [["x", None, "yz"], None], "hist": [[1, None, -1], []],
}, schema=GOLDEN_SCHEMA)


def test_golden_bytes_of_keys_and_values():
    """The bytes lakecore writes to LMDB, pinned: lakes written before must read the same.
    A failure here means the stored format changed, which needs a format version and a
    migration, not a new expected value."""
    layout = Layout.of(GOLDEN_SCHEMA, ["id", "name"], "ts")
    keys = encode_keys(GOLDEN_ROWS, layout)
    assert [k.hex() for k in keys] == [
        "7ffffffffffffffe" "0002" "6162",
        "8000000000000007" "0002" "c3a9",
    ]
    values = encode_values(layout, GOLDEN_ROWS.filter(pa.array([True, False])), 5)
    assert values[0].hex() == (
        "46f34cf65e470600"          # event time 2026-01-02T03:04:05.000006Z, int64 us LE
        "0500000000000000"          # commit version 5
        "02"                        # null columns (score, count, flag, day, tags, hist): count
        "000000000000f83f"          # score 1.5
        "00000000"                  # count: null -> zeros
        "01"                        # flag
        "e74f0000"                  # day: 20455 days
        "14000000"                  # tags: 20-byte payload
        "03000000" "02"             # 3 elements, element 1 null
        "01000000" "00000000" "02000000" "78" "797a"
        "0b000000"                  # hist: 11-byte payload
        "03000000" "02" "0100" "0000" "ffff"
    ).replace(" ", "")


def test_the_key_codec_reports_status_codes_and_one_helper_words_them():
    from lakecore import SchemaError, ValidationError
    from lakecore.online.codec import key_error

    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    layout = Layout.of(schema, ["id", "s"], None)
    status = keycodec.KeyStatus
    cases = [((1,), status.KEY_COUNT, -1, 1), ((1, 2), status.KEY_NOT_BYTES, 1, "int"),
             (("x", "a"), status.KEY_NOT_INTEGER, 0, "str"),
             ((1, "x" * 501), status.KEY_TOO_LONG, 1, 501),
             ((1.0, "a"), status.KEY_NOT_INTEGER, 0, "float"),
             ((2**63, "a"), status.KEY_OUT_OF_RANGE, 0, 2**63),
             ((-(2**63) - 1, "a"), status.KEY_OUT_OF_RANGE, 0, -(2**63) - 1)]
    for key, code, column, detail in cases:
        with pytest.raises(keycodec.KeyRefused) as refused:
            keycodec.encode_key(layout.codec, key)
        assert (refused.value.status, refused.value.column, refused.value.row,
                refused.value.detail) == (code, column, -1, detail)
        with pytest.raises(SchemaError, match="^key: ") as worded:
            encode_key(layout, key)
        if column >= 0:
            assert repr(schema.names[column]) in str(worded.value)
    table = pa.table({"id": [1, None, 3], "s": ["a", "b", "c"]}, schema=schema)
    with pytest.raises(keycodec.KeyRefused) as refused:
        keycodec.encode_keys(layout.codec, [(None, None, None, 0)] * 1, 3)
    assert refused.value.status == status.KEY_COUNT
    with pytest.raises(ValidationError, match="'id' has null values"):
        encode_keys(table, layout)
    long = pa.table({"id": [1], "s": ["y" * 600]}, schema=schema)
    with pytest.raises(ValidationError, match="'s': a value of 600 bytes"):
        encode_keys(long, layout)
    assert isinstance(key_error(layout, keycodec.KeyRefused(status.KEY_NULL, 0, 5, None), "keys",
                                ValidationError), ValidationError)
    # integers of any Python type with __index__ (numpy's) encode like ints
    assert keycodec.encode_key(layout.codec, (np.int32(-5), "a")) == \
        keycodec.encode_key(layout.codec, (-5, "a")) == reference.encode_key([-5, "a"], schema.types)


def test_values_refused_by_the_codec_are_worded_in_one_place():
    from lakecore import ValidationError
    from lakecore._native.rowformat import ValueRefused, ValueStatus
    from lakecore.online.codec import value_error

    layout = Layout.of(pa.schema([("id", pa.int64()), ("s", pa.string())]), ["id"], None)
    for column, named in [(0, "'s'"), (-1, "the keys")]:
        error = value_error(layout, ValueRefused(ValueStatus.VALUE_TOO_LARGE, column, -1, 2**31))
        assert isinstance(error, ValidationError)
        assert named in str(error) and "2,147,483,648" in str(error)
