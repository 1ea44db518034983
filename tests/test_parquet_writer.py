"""The one Parquet writer (lakecore.base.parquet): same rows, same bytes; the digest it
computes while writing is the file's; it never writes through a link and leaves nothing behind
when it fails."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakecore
from lakecore.base import parquet
from lakecore.base.hashing import digest_file


def test_same_rows_give_the_same_bytes_whatever_their_chunks(tmp_path):
    rows = pa.table({"id": list(range(1000)), "s": [f"v{i % 7}" for i in range(1000)]})
    chunked = pa.concat_tables([rows.slice(0, 10), rows.slice(10, 500), rows.slice(510)])
    assert chunked.column("id").num_chunks == 3
    a, b = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    size_a, digest_a = parquet.write_parquet(rows, a)
    size_b, digest_b = parquet.write_parquet(chunked, b)
    assert (size_a, digest_a) == (size_b, digest_b) == (os.path.getsize(a), digest_file(a))
    assert pq.read_table(b).equals(rows)


def test_tables_and_datasets_record_the_digest_of_their_files(tmp_path):
    with lakecore.open(str(tmp_path / "lake")) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": list(range(100)), "v": [float(i) for i in range(100)]})
        td = lake.create_feature_view("view", query=fg.select_all()).create_training_data(
            spine={"id": [1, 2, 3]})
        snapshot = fg._table.snapshot()
        for add in snapshot.files.values():
            path = os.path.join(fg._table.location, add["path"])
            assert add["tags"]["lakecore.sha256"] == digest_file(path)
            assert add["size"] == os.path.getsize(path)
        for parts in td._spec.files.values():
            for part in parts:
                assert part.sha256 == digest_file(os.path.join(lake.path, part.path))


def test_never_writes_through_a_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    link = tmp_path / "file.parquet"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        parquet.write_parquet(pa.table({"id": [1]}), str(link))
    assert target.read_bytes() == b"keep" and link.is_symlink()


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(parquet.pq, "write_table", broken)
    for replace in (False, True):
        with pytest.raises(OSError, match="No space"):
            parquet.write_parquet(pa.table({"id": [1]}), str(tmp_path / "f.parquet"),
                                  replace=replace)
        assert os.listdir(tmp_path) == []
