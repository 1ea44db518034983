"""Prediction logging: every served row (request keys, features before transforms, the
prediction, model, version, time) lands in NAME_predictions on flush, close, lake.close or
when the buffer fills; unlogged predictors write nothing."""

import json
import os

import numpy as np
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


def test_the_buffer_commits_when_full_and_on_lake_close(lake, monkeypatch):
    monkeypatch.setattr(prediction_log, "FLUSH_ROWS", 4)
    scorer = lake.predictor("scorer", load=load, log=True)
    for card in (1, 2, 3):
        scorer.predict({"card": [card]})
    assert "scorer_predictions" not in [g.name for g in lake.feature_groups()]
    scorer.predict({"card": [1]})                       # the fourth row: committed
    assert lake.feature_group("scorer_predictions").read().num_rows == 4
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
import json, os, sys
import numpy as np
import lakecore
from lakecore.models import prediction_log
prediction_log.FLUSH_ROWS = 3

class Doubler:
    def predict(self, X):
        return (2 * X[:, 0]).tolist()

lake = lakecore.open(sys.argv[1])
scorer = lake.predictor("scorer", load=lambda p: Doubler(), log=True)
for card in (1, 2, 3, 1, 2):        # three rows committed, two left in the buffer
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
    pid = os.fork()
    if pid == 0:                                    # the child: its buffer starts empty
        code = 0
        try:
            log = scorer._log
            log._forked()                           # what record() and flush() do first
            code = 0 if log._rows == 0 and log._parts == [] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    scorer.flush()                                  # the parent still commits its own rows
    assert lake.feature_group("scorer_predictions").read().num_rows == 2
