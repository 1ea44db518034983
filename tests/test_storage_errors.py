"""Opening only lakes or empty folders, and every refusal by the operating system reaching the
user as a ``StorageError`` that names the path, with the lake left as it was."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lmdb
import numpy as np
import pytest

import lakecore
from lakecore import IntegrityError, LakeError, NotFoundError, StorageError
from tests.lake_state import lake_digest

ROOT = Path(__file__).resolve().parents[1]


# -- opening ---------------------------------------------------------------------------------
def test_open_refuses_a_folder_that_is_neither_empty_nor_a_lake(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    before = sorted(os.listdir(folder))
    for readonly in (False, True):
        with pytest.raises(LakeError, match="not a lake.*not empty") as caught:
            lakecore.open(folder, readonly=readonly)
        assert not isinstance(caught.value, NotFoundError)
    assert sorted(os.listdir(folder)) == before          # nothing written
    assert (folder / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_open_refuses_a_file(tmp_path):
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0")
    with pytest.raises(LakeError, match="not a folder") as caught:
        lakecore.open(target)
    assert type(caught.value) is LakeError and not isinstance(caught.value, FileExistsError)
    assert target.read_text() == "root:x:0:0"


def test_open_makes_a_lake_in_an_empty_or_missing_folder_and_reopens_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for path in (empty, tmp_path / "new" / "lake"):
        with lakecore.open(path) as lake:
            lake.create_feature_group("g", primary_key="id").insert({"id": [1]})
        with lakecore.open(path) as lake:       # a lake now: not "empty", still opens
            assert lake.feature_group("g").read().num_rows == 1


def test_a_marker_that_is_a_link_is_refused(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    lake_path = tmp_path / "lake"
    lake_path.mkdir()
    (lake_path / "lakecore.json").symlink_to(outside)
    with pytest.raises(IntegrityError, match="not a regular file"):
        lakecore.open(lake_path)


def test_a_folder_that_cannot_be_made_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match=str(blocker)) as caught:
        lakecore.open(blocker / "lake")
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOTDIR


# -- refusals while working ------------------------------------------------------------------
@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1, 2], "v": [1.0, 2.0]})
        yield lake


def _refuse(monkeypatch, module, name, code):
    """Make ``module.name`` (an OS call) fail as the disk would, with ``code``."""
    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(module, name, refused)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EACCES])
def test_a_refused_write_is_a_storage_error_and_changes_nothing(lake, monkeypatch, code):
    fg = lake.feature_group("g")
    before = lake_digest(lake.path)
    with monkeypatch.context() as patch:
        _refuse(patch, os, "fsync", code)
        for call in (lambda: fg.insert({"id": [3], "v": [3.0]}),
                     lambda: fg.delete({"id": [1]}),
                     lambda: lake.create_feature_group("h", primary_key="id"),
                     lambda: lake.create_feature_view("view", query=fg.select_all())):
            with pytest.raises(StorageError) as caught:
                call()
            assert caught.value.errno == code
            assert lake.path in str(caught.value) and os.strerror(code) in str(caught.value)
    assert lake_digest(lake.path) == before
    assert sorted(fg.read().column("id").to_pylist()) == [1, 2]
    assert fg.online_read({"id": [1, 2, 3]}).column("v").to_pylist() == [1.0, 2.0, None]
    with lakecore.open(lake.path) as again:         # the next open works and finds it whole
        assert again.verify().ok, again.verify().problems
    fg.insert({"id": [3], "v": [3.0]})
    assert lake.verify().ok


def test_a_file_in_place_of_a_folder_is_a_storage_error(lake):
    fg = lake.feature_group("g")
    view = lake.create_feature_view("view", query=fg.select_all())
    blocker = Path(lake.path) / "training_data"
    blocker.write_text("not a folder")
    before = lake_digest(lake.path)
    with pytest.raises(StorageError, match="training_data") as caught:
        view.create_training_data()
    assert caught.value.errno == errno.ENOTDIR
    assert lake_digest(lake.path) == before and view.training_datasets() == []


def test_online_store_errors_are_storage_errors(lake, monkeypatch):
    fg = lake.feature_group("g")
    view = lake.create_feature_view("view", query=fg.select_all())
    assert view.feature_vector({"id": 1}) == {"v": 1.0}

    def broken(*args, **kwargs):
        raise lmdb.DiskError("mdb_get: Input/output error")
    store = type(lake.online_store)
    for name in ("read", "row_reader"):
        monkeypatch.setattr(store, name, broken)
    for call in (lambda: fg.online_read({"id": [1]}), lambda: view.feature_vector({"id": 1}),
                 lambda: view.feature_vectors({"id": [1]})):
        with pytest.raises(StorageError, match="online store at .*online.*Input/output") as caught:
            call()
        assert not isinstance(caught.value, lmdb.Error)


CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    import lakecore
    lake = lakecore.open(sys.argv[1])
    fg = lake.create_feature_group("g", primary_key="id")
    fg.insert({"id": np.arange(10), "v": np.zeros(10)})
    view = lake.create_feature_view("view", query=fg.select_all())
    with open(sys.argv[2], "wb") as f:
        f.write(np.random.default_rng(0).bytes(256 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)            # EFBIG instead of a signal
    limit = 64 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for name, call in [
            ("insert", lambda: fg.insert({"id": np.arange(10, 200_010),
                                          "v": np.random.default_rng(0).random(200_000)})),
            ("register", lambda: lake.models.register("m", sys.argv[2]))]:
        try:
            call()
            print(name, "no error")
        except lakecore.StorageError as exc:
            print(name, "StorageError", exc.errno, exc)
        except BaseException as exc:
            print(name, "other", type(exc).__name__, exc)
""")


def test_a_file_size_limit_is_a_storage_error_naming_the_file(tmp_path):
    path, artifact = tmp_path / "lake", tmp_path / "model.bin"
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), str(artifact)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    for name in ("insert", "register"):
        assert lines[name].startswith(f"StorageError {errno.EFBIG} "), result.stdout
        assert str(path) in lines[name] and "File too large" in lines[name]
    with lakecore.open(path) as lake:
        assert lake.models.list() == [] and lake.feature_group("g").read().num_rows == 10
        assert lake.verify().ok
        assert not os.path.exists(os.path.join(lake.path, "models", "m", "v1"))


def test_storage_errors_leave_a_model_registry_as_it_was(lake, monkeypatch, tmp_path):
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(np.arange(10).tobytes())
    before = lake_digest(lake.path)
    with monkeypatch.context() as patch:
        _refuse(patch, os, "fsync", errno.ENOSPC)
        with pytest.raises(StorageError, match="No space left"):
            lake.models.register("m", artifact)
    assert lake.models.list() == []
    version = lake.models.register("m", artifact)
    assert version.version == 1 and lake.verify().ok
    assert before != lake_digest(lake.path)
