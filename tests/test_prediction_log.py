"""Prediction logging: every served row (request keys, features before transforms, the
prediction, model, version, time) lands in NAME_predictions on flush, close, lake.close or
when the buffer fills; unlogged predictors write nothing."""

import json
import math
import os
import time

import numpy as np
import pyarrow as pa
import pytest

import lakecore
from lakecore.models import prediction_log


class Doubler:
    def predict(self, X):
        return (2 * X[:, 0]).tolist()


def load(path):
    return Doubler()


@pytest.fixture
def lake(tmp_path):
    lake = lakecore.open(tmp_path / "lake")
    fg = lake.create_feature_group("spend", primary_key="card", online=True)
    fg.insert({"card": [1, 2, 3], "total": [10.0, 20.0, 30.0]})
    view = lake.create_feature_view("v", query=fg.select_all(),
                                    transforms={"total": "standard_scaler"})
    td = view.create_training_data()
    artifact = tmp_path / "m.json"
    artifact.write_text(json.dumps({}))
    lake.models.register("scorer", str(artifact), training_data=td)
    yield lake
    if not lake._ctx.closed:
        lake.close()


def test_served_rows_are_logged_before_transforms(lake):
    with lake.predictor("scorer", load=load, log=True) as scorer:
        first = scorer.predict({"card": [2, 1]})
        scorer.predict({"card": [3]})
        assert "scorer_predictions" not in [g.name for g in lake.feature_groups()]
    logged = lake.feature_group("scorer_predictions").read().sort_by("card")
    assert logged.column("card").to_pylist() == [1, 2, 3]
    assert logged.column("total").to_pylist() == [10.0, 20.0, 30.0]     # as served
    assert logged.column("prediction").to_pylist()[1] == first[0]
    assert set(logged.column("model").to_pylist()) == {"scorer"}
    assert set(logged.column("model_version").to_pylist()) == {1}
    assert logged.schema.field("logged_at").type == prediction_log.TIME
    assert lake.verify().ok


def logged_rows(lake, timeout: float = 20.0, at_least: int = 1) -> int:
    """Rows in the predictions group, waiting (up to ``timeout``) for a background commit."""
    deadline = time.monotonic() + timeout
    while True:
        names = [g.name for g in lake.feature_groups()]
        rows = lake.feature_group("scorer_predictions").read().num_rows \
            if "scorer_predictions" in names else 0
        if rows >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def test_the_buffer_commits_when_full_and_on_lake_close(lake, monkeypatch):
    monkeypatch.setattr(prediction_log, "FLUSH_ROWS", 4)
    scorer = lake.predictor("scorer", load=load, log=True)
    for card in (1, 2, 3):
        scorer.predict({"card": [card]})
    time.sleep(0.2)
    assert "scorer_predictions" not in [g.name for g in lake.feature_groups()]
    scorer.predict({"card": [1]})           # the fourth row: committed in the background
    assert logged_rows(lake, at_least=4) == 4
    scorer.predict({"card": [2]})
    path = lake.path
    lake.close()
    with lakecore.open(path) as again:
        assert again.feature_group("scorer_predictions").read().num_rows == 5


def test_an_unlogged_predictor_writes_nothing(lake):
    scorer = lake.predictor("scorer", load=load)
    scorer.predict({"card": [1]})
    scorer.flush()
    assert "scorer_predictions" not in [g.name for g in lake.feature_groups()]


def test_logging_does_not_change_the_answers(lake):
    plain = lake.predictor("scorer", load=load)
    logged = lake.predictor("scorer", load=load, log=True)
    keys = {"card": np.array([1, 2, 3])}
    assert plain.predict(keys) == logged.predict(keys)
    logged.flush()
    assert lake.feature_group("scorer_predictions").read().num_rows == 3


CRASH = """
import json, os, sys, time
import numpy as np
import lakecore
from lakecore.models import prediction_log
prediction_log.FLUSH_ROWS = 3

class Doubler:
    def predict(self, X):
        return (2 * X[:, 0]).tolist()

lake = lakecore.open(sys.argv[1])
scorer = lake.predictor("scorer", load=lambda p: Doubler(), log=True)
for card in (1, 2, 3):              # three rows: committed in the background
    scorer.predict({"card": [card]})
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if lake.feature_group("scorer_predictions").read().num_rows == 3:
            break
    except lakecore.NotFoundError:
        pass
    time.sleep(0.01)
for card in (1, 2):                 # two left in the buffer
    scorer.predict({"card": [card]})
os._exit(0)                         # killed: no flush, no close
"""


def test_a_crash_loses_at_most_the_buffer(lake):
    import subprocess
    import sys

    path = lake.path
    lake.close()
    subprocess.run([sys.executable, "-c", CRASH, path], check=True, timeout=120,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with lakecore.open(path) as again:
        assert again.feature_group("scorer_predictions").read().num_rows == 3
        assert again.verify().ok, again.verify().problems


def test_a_forked_child_does_not_commit_its_parents_buffer(lake):
    scorer = lake.predictor("scorer", load=load, log=True)
    scorer.predict({"card": [1, 2]})                # buffered in the parent
    with scorer._log._lock:                         # held by another thread at the fork
        pid = os.fork()
    if pid == 0:                                    # the child: its buffer starts empty
        code = 1
        try:
            log = scorer._log
            if log._rows == 0 and log._parts == [] and log._thread is None:
                with log._lock:                     # a fresh lock, not the parent's held one
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    scorer.flush()                                  # the parent still commits its own rows
    assert lake.feature_group("scorer_predictions").read().num_rows == 2


def test_an_idle_buffer_commits_after_flush_seconds(lake, monkeypatch):
    monkeypatch.setattr(prediction_log, "FLUSH_SECONDS", 0.3)
    scorer = lake.predictor("scorer", load=load, log=True)
    scorer.predict({"card": [1]})
    scorer.predict({"card": [2, 3]})
    started = time.monotonic()
    assert logged_rows(lake, at_least=3) == 3      # no further call, no flush: the timer
    assert time.monotonic() - started < 15
    scorer.predict({"card": [3]})                  # the thread waits for the next row
    assert logged_rows(lake, at_least=4) == 4
    scorer.close()
    assert scorer._log._thread is None


def test_one_key_calls_log_what_batch_calls_log(lake):
    one = lake.predictor("scorer", load=load, log=True)
    batch = lake.predictor("scorer", load=load, log=True)
    answers = [one.predict({"card": [card]}) for card in (1, 2, 9)]
    answers.append(one.predict({"card": np.array([3])}))
    expected = [batch.predict({"card": [card, 0]})[:1] for card in (1, 2, 9, 3)]
    np.testing.assert_array_equal(answers, expected)     # the unknown key 9: NaN on both
    assert math.isnan(one.predict({"card": [9]})[0])
    one.close()
    logged = lake.feature_group("scorer_predictions").read()
    assert logged.num_rows == 5
    assert logged.schema.field("total").type == pa.float64()
    assert logged.schema.field("card").type == pa.int64()
    by_card = sorted(zip(logged.column("card").to_pylist(), logged.column("total").to_pylist(),
                         logged.column("prediction").to_pylist()), key=lambda r: r[0])
    assert by_card[:3] == [(1, 10.0, answers[0][0]), (2, 20.0, answers[1][0]),
                           (3, 30.0, answers[3][0])]
    assert by_card[3][1] is None and by_card[4][1] is None     # unknown: logged as missing
    batch.close()
    assert lake.feature_group("scorer_predictions").read().num_rows == 5 + 8


def test_a_failed_background_commit_keeps_the_rows(lake, monkeypatch):
    monkeypatch.setattr(prediction_log, "FLUSH_ROWS", 2)
    scorer = lake.predictor("scorer", load=load, log=True)
    log = scorer._log
    real = log._commit
    failing = [True]

    def commit(parts):
        if failing[0]:
            raise OSError(28, "No space left on device")
        real(parts)

    monkeypatch.setattr(log, "_commit", commit)
    with pytest.warns(UserWarning, match="background commit failed"):
        scorer.predict({"card": [1, 2]})
        deadline = time.monotonic() + 20
        while log.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert log._rows == 2
    failing[0] = False
    scorer.flush()
    assert lake.feature_group("scorer_predictions").read().num_rows == 2
    assert log.failure is None


class Classifier:
    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-X[:, 0] / 10))
        return np.column_stack([1 - p, p])


def test_class_probabilities_are_logged_as_lists(lake):
    with lake.predictor("scorer", load=lambda path: Classifier(), log=True) as scorer:
        one = scorer.predict({"card": [1]}, method="predict_proba")
        many = scorer.predict({"card": [2, 3]}, method="predict_proba")
    logged = lake.feature_group("scorer_predictions").read().sort_by("card")
    assert logged.schema.field("prediction").type == pa.list_(pa.float64())
    np.testing.assert_allclose(logged.column("prediction").to_pylist(),
                               np.vstack([one, many]))
