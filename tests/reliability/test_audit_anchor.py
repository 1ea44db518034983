"""An anchor kept outside the lake (lake.audit_head()) catches an audit log that lost its tail,
vanished, or was rewritten from the start consistently with itself and with every file (which
nothing inside the lake can tell)."""

import os
import time

import pytest

import lakecore


def build(path: str) -> tuple[int, str]:
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        for i in range(3):
            fg.insert({"id": [i], "v": [float(i)]})
        head = lake.audit_head()
        fg.insert({"id": [9], "v": [9.0]})          # events after the anchor are fine
        assert lake.verify(anchor=head).ok
        return head


def test_an_anchor_holds_while_the_log_only_grows(tmp_path):
    path = str(tmp_path / "lake")
    head = build(path)
    with lakecore.open(path) as lake:
        lake.feature_group("g").insert({"id": [10], "v": [1.0]})
        assert lake.verify(anchor=head).ok and lake.audit_head()[0] > head[0]


def test_a_log_that_lost_its_tail_is_caught_by_the_anchor(tmp_path):
    path = str(tmp_path / "lake")
    head = build(path)
    log = os.path.join(path, "audit.log")
    with open(log, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    with open(log, "wb") as f:
        f.writelines(lines[: head[0] - 1])
    with lakecore.open(path, readonly=True) as lake:
        problems = lake.verify(anchor=head).problems
    assert any(f"anchored event {head[0]} is gone" in p for p in problems), problems


def test_a_log_rewritten_from_the_start_is_caught_only_by_the_anchor(tmp_path):
    """Every event made again with lakecore's own code, consistent with every file: only an
    anchor kept elsewhere tells."""
    from lakecore.governance.audit import AuditLog

    path = str(tmp_path / "lake")
    head = build(path)
    events = AuditLog(path).events()
    os.unlink(os.path.join(path, "audit.log"))
    forged = AuditLog(path)
    time.sleep(0.01)                        # other times, so other hashes
    for e in events:
        forged.append(e.op, e.target, e.object_hash, files=e.files, catalog=e.catalog,
                      aborts=e.aborts)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.verify().ok, lake.verify().problems
        problems = lake.verify(anchor=head).problems
    assert any(f"event {head[0]} has hash" in p for p in problems), problems


@pytest.mark.parametrize("anchor", [(1,), ("1", "sha256:x"), "sha256:x", (1, 2)])
def test_a_malformed_anchor_is_a_validation_error(tmp_path, anchor):
    with lakecore.open(str(tmp_path / "lake")) as lake:
        lake.create_feature_group("g", primary_key="id")
        with pytest.raises(lakecore.ValidationError, match="anchor"):
            lake.verify(anchor=anchor)
