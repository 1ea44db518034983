"""A lake on media lakecore cannot write (a read-only mount; for a user other than root, files
it may not change): readonly opens read everything, online reads and feature vectors included;
a writable open is a ReadOnlyError. The lake is read by another process."""

import contextlib
import os
import subprocess
import sys
import textwrap

import pytest

import lakecore

CHILD = textwrap.dedent("""
    import sys
    import lakecore
    path = sys.argv[1]
    try:
        lakecore.open(path)
        print("writable open: opened")
    except lakecore.ReadOnlyError as exc:
        print("writable open: ReadOnlyError", exc)
    with lakecore.open(path, readonly=True) as lake:
        fg = lake.feature_group("g")
        print("read", fg.read().num_rows)
        print("online_read", fg.online_read({"id": [1, 2]}).column("v").to_pylist())
        print("feature_vector", lake.feature_view("view").feature_vector({"id": 2}))
        print("verify", lake.verify().ok)
""")


@contextlib.contextmanager
def read_only(path: str, tmp_path):
    """``path`` seen through a read-only bind mount (as root), or with every write permission
    taken away (as another user, who cannot override them)."""
    if os.geteuid() != 0:
        modes = {}
        for root, _, files in os.walk(path):
            for name in [*files, ""]:
                full = os.path.join(root, name) if name else root
                modes[full] = os.stat(full).st_mode
                os.chmod(full, modes[full] & 0o555)
        try:
            yield path
        finally:
            for full, mode in modes.items():
                os.chmod(full, mode)
        return
    mount = tmp_path / "mounted"
    mount.mkdir()
    made = subprocess.run(["mount", "--bind", path, str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {made.stderr.decode().strip()}")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield str(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_lake_on_read_only_media_reads_and_serves_and_refuses_writable_opens(tmp_path):
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1, 2], "v": [1.0, 2.0]})
        lake.create_feature_view("view", query=fg.select_all())
    with read_only(path, tmp_path) as seen:
        child = subprocess.run([sys.executable, "-c", CHILD, seen], capture_output=True,
                               text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    lines = child.stdout.splitlines()
    assert lines[0].startswith("writable open: ReadOnlyError") and "readonly=True" in lines[0]
    assert lines[1:] == ["read 2", "online_read [1.0, 2.0]", "feature_vector {'v': 2.0}",
                         "verify True"]
