"""Raw LMDB edits to the online store, made from outside lakecore: a value that does not decode
is an IntegrityError on every read path, never a crash."""

import os
import struct
import subprocess
import sys
import textwrap

import pytest

import lakecore

READ_IN_A_CHILD = textwrap.dedent("""
    import sys
    import lakecore
    with lakecore.open(sys.argv[1], readonly=True) as lake:
        fg, view = lake.feature_group("g"), lake.feature_view("view")
        for name, call in [("online_read", lambda: fg.online_read({"id": [1, 2]})),
                           ("feature_vector", lambda: view.feature_vector({"id": 1})),
                           ("feature_vectors", lambda: view.feature_vectors({"id": [2, 1]}))]:
            try:
                call()
                print(name, "ok")
            except lakecore.IntegrityError as exc:
                print(name, "IntegrityError", exc)
""")


def build(path: str) -> None:
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1, 2], "score": [0.5, 0.25], "name": ["ann", "bob"],
                   "tags": [["a", "bb"], ["c"]], "counts": [[1, 2, 3], []]})
        lake.create_feature_view("view", query=fg.select_all())


RAW_LMDB = textwrap.dedent("""
    import struct, sys, lmdb
    path, key_id, new = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    env = lmdb.open(path, max_dbs=16, subdir=True)
    key = struct.pack(">Q", key_id ^ (1 << 63))
    with env.begin(write=True) as txn:
        db = env.open_db(b"fg:g@1", txn=txn, create=False)
        if new == "-":
            print(txn.get(key, db=db).hex())
        else:
            txn.put(key, bytes.fromhex(new), db=db)
""")


def edit_value(path: str, key_id: int, edit) -> None:
    """Rewrite the stored value of ``id == key_id`` with ``edit(bytes) -> bytes``, in another
    process, with py-lmdb alone."""
    def raw(new: str) -> str:
        return subprocess.run([sys.executable, "-c", RAW_LMDB, os.path.join(path, "online"),
                               str(key_id), new], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()
    raw(edit(bytes.fromhex(raw("-"))).hex())


def first_length_prefix(value: bytes) -> int:
    """Where the first variable-width column's 4-byte length starts: after the 16-byte header,
    the null bitmap of 4 columns (1 byte) and the one float64."""
    return 16 + 1 + 8


EDITS = {
    "string length 0x7fffff00": lambda v: v[:first_length_prefix(v)] + struct.pack(
        "<I", 0x7FFFFF00) + v[first_length_prefix(v) + 4:],
    "truncated value": lambda v: v[: len(v) - 3],
    "only the header": lambda v: v[:16],
    "shorter than a header": lambda v: v[:5],
    "empty": lambda v: b"",
    "bytes appended": lambda v: v + b"\x00\x01",
    # the last column, counts = [1, 2, 3]: length, count, bitmap byte, 24 bytes of elements
    "list count 2**32-1": lambda v: v[:-29] + struct.pack("<I", 0xFFFFFFFF) + v[-25:],
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_value_that_does_not_decode_is_an_integrity_error_never_a_crash(tmp_path, edit):
    path = str(tmp_path / "lake")
    build(path)
    edit_value(path, 1, EDITS[edit])
    child = subprocess.run([sys.executable, "-c", READ_IN_A_CHILD, path], capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, f"the reader died ({child.returncode}): {child.stderr[-2000:]}"
    lines = child.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["online_read", "IntegrityError"], ["feature_vector", "IntegrityError"],
        ["feature_vectors", "IntegrityError"]], child.stdout
    assert all("changed outside lakecore" in line for line in lines)


def test_the_untouched_key_still_reads(tmp_path):
    path = str(tmp_path / "lake")
    build(path)
    edit_value(path, 1, EDITS["truncated value"])
    with lakecore.open(path, readonly=True) as lake:
        assert lake.feature_view("view").feature_vector({"id": 2}) == {
            "score": 0.25, "name": "bob", "tags": ["c"], "counts": []}


RAW_OPERATIONS = textwrap.dedent("""
    import struct, sys, lmdb
    path, operation = sys.argv[1], sys.argv[2]
    key = lambda i: struct.pack(">Q", i ^ (1 << 63))
    env = lmdb.open(path, max_dbs=16, subdir=True)
    with env.begin(write=True) as txn:
        db = env.open_db(b"fg:g@1", txn=txn, create=False)
        marks = env.open_db(b"__watermarks__", txn=txn, create=False)
        one, two = txn.get(key(1), db=db), txn.get(key(2), db=db)
        if operation == "change a value":      # the float of id 1: 0.5 -> 0.75
            at = 16 + 1
            assert struct.unpack("<d", one[at:at + 8])[0] == 0.5
            txn.put(key(1), one[:at] + struct.pack("<d", 0.75) + one[at + 8:], db=db)
        elif operation == "swap two keys' values":
            txn.put(key(1), two, db=db)
            txn.put(key(2), one, db=db)
        elif operation == "delete a key":
            txn.delete(key(2), db=db)
        elif operation == "add a key":
            txn.put(key(3), one, db=db)
        elif operation == "move the watermark":
            txn.put(b"fg:g@1", (10**6).to_bytes(8, "little", signed=True), db=marks)
        elif operation.startswith("set the commit version to"):
            version = int(operation.split()[-1]).to_bytes(8, "little", signed=True)
            txn.put(key(1), one[:8] + version + one[16:], db=db)
""")


@pytest.mark.parametrize("operation", ["change a value", "swap two keys' values",
                                       "delete a key", "add a key", "move the watermark",
                                       "set the commit version to 7"])
def test_raw_edits_of_the_online_store_are_reported_by_verify(tmp_path, operation):
    path = str(tmp_path / "lake")
    build(path)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.verify().ok
    subprocess.run([sys.executable, "-c", RAW_OPERATIONS, os.path.join(path, "online"),
                    operation], check=True, timeout=60)
    with lakecore.open(path, readonly=True) as lake:
        problems = lake.verify().problems
    assert problems and all("fg:g@1" in p and "online store" in p for p in problems), problems


def test_verify_names_the_keys_whose_online_rows_differ(tmp_path):
    path = str(tmp_path / "lake")
    build(path)
    subprocess.run([sys.executable, "-c", RAW_OPERATIONS, os.path.join(path, "online"),
                    "swap two keys' values"], check=True, timeout=60)
    with lakecore.open(path, readonly=True) as lake:
        [problem] = lake.verify().problems
    assert "2 key(s): (id=1), (id=2)" in problem


def test_a_commit_version_within_the_watermark_is_not_a_served_value(tmp_path):
    """Compaction rewrites rows without their commit: only a version past the watermark (which
    would keep newer rows of the same event time out) is a problem."""
    path = str(tmp_path / "lake")
    build(path)
    with lakecore.open(path) as lake:               # id 1 written again, by commit 1
        lake.feature_group("g").insert({"id": [1], "score": [0.5], "name": ["ann"],
                                        "tags": [["a", "bb"]], "counts": [[1, 2, 3]]})
    subprocess.run([sys.executable, "-c", RAW_OPERATIONS, os.path.join(path, "online"),
                    "set the commit version to 0"], check=True, timeout=60)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.verify().ok


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_online_store_is_rebuilt_on_a_writable_open_and_audited(tmp_path, damage):
    path = str(tmp_path / "lake")
    build(path)
    data = os.path.join(path, "online", "data.mdb")
    with open(data, "r+b") as f:
        if damage == "garbage":
            f.write(os.urandom(64 * 1024))
        else:
            f.truncate(0 if damage == "empty" else 100)
    child = subprocess.run([sys.executable, "-c", READ_IN_A_CHILD, path], capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]    # readonly: errors, never a crash
    with pytest.warns(UserWarning, match="rebuilt from the offline tables"):
        lake = lakecore.open(path)
    with lake:
        assert lake.verify().ok, lake.verify().problems
        assert lake.feature_view("view").feature_vector({"id": 2}) == {
            "score": 0.25, "name": "bob", "tags": ["c"], "counts": []}
        assert [e.op for e in lake.audit_log()][-1] == "rebuild_online"
    with lakecore.open(path) as lake:           # rebuilt once
        assert [e.op for e in lake.audit_log()].count("rebuild_online") == 1
