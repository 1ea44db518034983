"""The ``lakecore`` command line (also ``python -m lakecore``).

``quickstart [PATH]`` builds a demo lake end to end from data it generates; ``info``,
``history``, ``lineage`` and ``verify`` inspect a lake. Errors print one line (exit status 2);
``verify`` exits with 1 when it finds problems.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import lakecore
from lakecore import expect
from lakecore._native.asof import has_openmp
from lakecore.base.times import utc_micros

DAY_US = 86_400 * 1_000_000
FEATURES = ["tx_count", "total_amount", "max_amount", "night_share"]


# -- the demo's data ---------------------------------------------------------------------------
def card_transactions(rows: int, cards: int, days: int, seed: int,
                      end: dt.datetime | None = None) -> pa.Table:
    """Synthetic card transactions over the ``days`` days before ``end`` (default: today, UTC)
    with a fraud label: risky cards make bigger and more nightly purchases, and those are
    more often fraud."""
    if end is None:
        end = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    rng = np.random.default_rng(seed)
    risk = rng.beta(1, 12, cards)                         # each card's hidden risk
    card = rng.integers(0, cards, rows)
    start_us = utc_micros(start, "end")
    at = start_us + rng.integers(0, days * DAY_US, rows)
    night = rng.random(rows) < 0.1 + 2 * risk[card]
    amount = np.round(rng.lognormal(3 + 3 * risk[card], 0.6), 2)
    fraud = rng.random(rows) < 0.01 + 1.5 * risk[card] * night
    return pa.table({"card": card, "at": pa.array(at, pa.timestamp("us", "UTC")),
                     "amount": amount, "night": night, "is_fraud": fraud.astype(np.int8)})


def daily_activity(transactions: pa.Table) -> pa.Table:
    """Per card and day: count, total and largest amount, share of night purchases; stamped
    at the end of the day (known only then)."""
    day = pc.floor_temporal(transactions.column("at"), unit="day")
    grouped = transactions.append_column("day", day).group_by(["card", "day"]).aggregate([
        ("amount", "count"), ("amount", "sum"), ("amount", "max"), ("night", "mean")])
    end_of_day = pc.add(grouped.column("day"), pa.scalar(dt.timedelta(days=1)))
    return pa.table({"card": grouped.column("card"), "at": end_of_day,
                     "tx_count": grouped.column("amount_count"),
                     "total_amount": grouped.column("amount_sum"),
                     "max_amount": grouped.column("amount_max"),
                     "night_share": grouped.column("night_mean")})


class LogisticModel:
    """A logistic regression (weights then bias) trained with numpy; the demo's model."""

    def __init__(self, weights: np.ndarray):
        self.weights = np.asarray(weights, np.float64)

    @classmethod
    def load(cls, path: str) -> LogisticModel:
        return cls(np.load(path))

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, epochs: int = 300, rate: float = 0.5) -> LogisticModel:
        X = np.nan_to_num(X)
        w = np.zeros(X.shape[1] + 1)
        for _ in range(epochs):
            p = 1 / (1 + np.exp(-(X @ w[:-1] + w[-1])))
            gradient = p - y
            w[:-1] -= rate * X.T @ gradient / len(y)
            w[-1] -= rate * gradient.mean()
        return cls(w)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.nan_to_num(np.asarray(X, np.float64))
        return 1 / (1 + np.exp(-(X @ self.weights[:-1] + self.weights[-1])))


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels.sum()
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


_mid_line = False     # a step's title is printed and its time is not: errors start a new line


@contextmanager
def _step(title: str) -> Iterator[None]:
    global _mid_line
    print(f"- {title} ...", end="", flush=True)
    _mid_line = True
    started = time.perf_counter()
    yield
    print(f" {time.perf_counter() - started:.2f} s")
    _mid_line = False


def quickstart(path: str | None, rows: int) -> int:
    folder = Path(path) if path else Path(tempfile.mkdtemp(prefix="lakecore-quickstart-"))
    if folder.exists() and any(folder.iterdir()):
        raise lakecore.AlreadyExistsError(f"{folder} is not empty; quickstart builds a new lake")
    cards = max(rows // 40, 10)
    print(f"lakecore {lakecore.__version__} (native core: OpenMP "
          f"{'on' if has_openmp() else 'off'}, {lakecore.get_num_threads()} threads)")
    print(f"building a demo lake in {folder}")
    total = time.perf_counter()
    with _step(f"generating {rows:,} card transactions of {cards:,} cards over the last 60 days"):
        transactions = card_transactions(rows, cards, 60, seed=7)
        activity = daily_activity(transactions)
    with lakecore.open(folder) as lake:
        with _step(f"ingesting {transactions.num_rows:,} labeled transactions (offline group "
                   f"'transactions')"):
            labeled = lake.create_feature_group("transactions", primary_key="card",
                                                event_time="at")
            labeled.set_expectations([expect.not_null("amount"),
                                      expect.between("amount", 0, 100_000),
                                      expect.in_set("is_fraud", [0, 1])])
            commit = labeled.insert(transactions.select(["card", "at", "amount", "is_fraud"]))
        checks = commit.validation.results
        print(f"  validation: {'passed' if commit.validation.ok else 'FAILED'} "
              f"({len(checks)} expectations, {sum(r.unexpected_count for r in checks)} "
              f"unexpected values)")
        amount = labeled.statistics(columns=["amount"]).columns["amount"]
        print(f"  amount: mean {amount.mean:.2f}, median {amount.quantiles[0.5]:.2f}, "
              f"p99 {amount.quantiles[0.99]:.2f}, {amount.distinct:,} distinct")
        with _step(f"ingesting {activity.num_rows:,} daily card aggregates (online group "
                   f"'card_activity', ttl 7 days)"):
            daily = lake.create_feature_group("card_activity", primary_key="card",
                                              event_time="at", online=True,
                                              ttl=dt.timedelta(days=7))
            daily.insert(activity)
        view = lake.create_feature_view(
            "fraud", query=labeled.select(["is_fraud"]).join(daily.select(FEATURES)),
            labels=["is_fraud"], transforms={f: "standard_scaler" for f in FEATURES})
        with _step("building training data: each transaction joined to its card's activity as "
                   "of that moment, split 80/20"):
            td = view.create_training_data(split={"train": 0.8, "test": 0.2}, seed=7)
        train, test = td.read("train"), td.read("test")
        X_train = np.column_stack([train.column(f).to_numpy(zero_copy_only=False) for f in FEATURES])
        X_test = np.column_stack([test.column(f).to_numpy(zero_copy_only=False) for f in FEATURES])
        y_train = train.column("is_fraud").to_numpy(zero_copy_only=False)
        y_test = test.column("is_fraud").to_numpy(zero_copy_only=False)
        with _step(f"training a logistic regression on {len(y_train):,} rows (numpy)"):
            model = LogisticModel.fit(X_train, y_train)
        auc = _auc(model.predict(X_test), y_test)
        print(f"  test AUC {auc:.3f} on {len(y_test):,} rows "
              f"({int(y_test.sum()):,} frauds)")
        with _step("registering the model with its metrics and alias 'production'"):
            weights = folder / "weights.npy"
            np.save(weights, model.weights)
            version = lake.models.register("fraud_scorer", weights, training_data=td,
                                           metrics={"test_auc": auc},
                                           params={"epochs": 300, "features": FEATURES})
            weights.unlink()
            lake.models.set_alias("fraud_scorer", "production", version.version)
        predictor = lake.predictor("fraud_scorer", alias="production", load=LogisticModel.load,
                                   log=True)
        some_cards = {"card": [0, 1, 2, 3, 4]}
        started = time.perf_counter()
        scores = predictor.predict(some_cards)
        elapsed = time.perf_counter() - started
        print(f"- scoring 5 cards from the online store (alias 'production'): "
              f"{elapsed * 1000:.2f} ms")
        for card, score in zip(some_cards["card"], scores):
            print(f"    card {card}: fraud probability {score:.3f}")
        view.feature_vector({"card": 0})                 # the first call plans the reads
        started = time.perf_counter()
        vector = view.feature_vector({"card": 0})
        print(f"- one feature vector (card 0, transformed): "
              f"{(time.perf_counter() - started) * 1e6:.0f} us")
        print("    " + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} None"
                                  for k, v in vector.items()))
        with _step("serving 500 cards with prediction logging, then comparing what was served "
                   "with the training data"):
            predictor.predict({"card": list(range(500))})
            drift = lake.monitor("fraud_scorer", load=LogisticModel.load)
            page = folder.parent / f"{folder.name}-drift.html"   # beside the lake, not in it
            drift.to_html(str(page))
        for row in drift.rows:
            print(f"    {row.feature}: {row.metric} {row.value:.3f}"
                  f"{' DRIFTED' if row.drifted else ''}")
        print(f"  drift report: {page}")
        with _step("verifying every file, hash and the audit log"):
            report = lake.verify()
        print(f"  verify: {'ok' if report.ok else 'PROBLEMS'} ({report.files_checked} files)")
        print(f"- lineage of model fraud_scorer v{version.version} (what it was made from):")
        for line in lineage_tree(lake, version.ref, "upstream"):
            print(f"    {line}")
        print(f"done in {time.perf_counter() - total:.1f} s; try: lakecore info {folder}")
    return 0 if report.ok else 1


# -- inspecting a lake -------------------------------------------------------------------------
def info(path: str) -> int:
    with lakecore.open(path, readonly=True) as lake:
        print(f"lake {lake.path}")
        groups = lake.feature_groups()
        print(f"feature groups: {len(groups)}")
        for fg in groups:
            history = fg.history()
            latest = history[-1] if history else None
            print(f"  fg:{fg.name}@{fg.version}  key {fg.primary_key}  event_time "
                  f"{fg.event_time}  online {fg.online}  commits {len(history)}"
                  + (f"  latest #{latest.version} {latest.hash[:19]}..." if latest and latest.hash else ""))
        views = lake.feature_views()
        print(f"feature views: {len(views)}")
        for view in views:
            datasets = view.training_datasets()
            print(f"  fv:{view.name}@{view.version}  labels {view.labels}  training data "
                  f"versions {[td.version for td in datasets]}")
        names = lake.models.list()
        print(f"models: {len(names)}")
        for name in names:
            for mv in lake.models.versions(name):
                print(f"  model:{name}@{mv.version}  metrics {mv.metrics}  aliases {mv.aliases}")
        print(f"audit events: {len(lake.audit_log())}")
    return 0


def _group_ref(command: str, ref: str) -> tuple[str, int, int | None]:
    """``(name, version, commit or None)`` of a feature group ref; ValidationError else."""
    from lakecore.governance.lineage import parse_ref

    kind, name, version, commit = parse_ref(ref)
    if kind != "fg":
        raise lakecore.ValidationError(f"{command}: expected a feature group ref fg:NAME@V or "
                                       f"fg:NAME@V#COMMIT, got {ref!r}")
    return name, version, commit


def history(path: str, ref: str) -> int:
    name, version, commit = _group_ref("history", ref)
    with lakecore.open(path, readonly=True) as lake:
        commits = lake.feature_group(name, version).history()
        if commit is not None:
            commits = [c for c in commits if c.version == commit]
            if not commits:
                raise lakecore.NotFoundError(f"feature group {name!r} version {version} has "
                                             f"no commit {commit}")
        for c in commits:
            print(f"#{c.version}  {c.timestamp.isoformat()}  {c.operation:8s} "
                  f"+{c.rows_added} -{c.rows_removed}  {c.hash}")
    return 0


def stats(path: str, ref: str) -> int:
    """Print the statistics of a feature group at a commit, one line per column."""
    name, version, commit = _group_ref("stats", ref)
    with lakecore.open(path, readonly=True) as lake:
        table = lake.feature_group(name, version).statistics(as_of=commit).to_table()
    for row in table.to_pylist():
        figures = [f"count {row['count']}", f"nulls {row['nulls']}",
                   f"distinct {row['distinct']}"]
        for field in ("min", "max", "mean"):
            if row[field] is not None:
                figures.append(f"{field} {row[field]}")
        if row["std"] is not None:
            figures.append(f"std {row['std']:.6g}")
        if row["top"] is not None:
            figures.append(f"top {row['top']}")
        print(f"{row['column']}: {', '.join(figures)}")
    return 0


def monitor(path: str, ref: str, html_path: str | None) -> int:
    """Print a model version's drift report (logged features against its training data);
    1 when any feature drifted."""
    from lakecore.governance.lineage import parse_ref

    kind, name, version, _ = parse_ref(ref)
    if kind != "model":
        raise lakecore.ValidationError(f"monitor: expected a model ref model:NAME@V, got {ref!r}")
    with lakecore.open(path) as lake:
        report = lake.monitor(name, version=version)
    for row in report.rows:
        flag = "DRIFTED" if row.drifted else "ok"
        print(f"{row.feature}: {row.metric} {row.value:.4f} (threshold {row.threshold}) {flag}")
    if html_path:
        report.to_html(html_path)
        print(f"report: {html_path}")
    return 1 if report.drifted else 0


def lineage_tree(lake: lakecore.Lake, ref: str, direction: str) -> list[str]:
    """The lineage of ``ref`` drawn as a tree of its direct links: each object under the
    objects it was made from (upstream) or that were made from it (downstream)."""
    reach: dict[str, list] = {}

    def reachable(node_ref: str) -> list:
        if node_ref not in reach:
            reach[node_ref] = lake.lineage(node_ref, direction)
        return reach[node_ref]

    def children(node_ref: str) -> list:
        nodes = reachable(node_ref)
        further = {n.ref for child in nodes for n in reachable(child.ref)}
        return [n for n in nodes if n.ref not in further]

    def draw(node_ref: str, label: str, prefix: str, last: bool, top: bool) -> list[str]:
        branch = "" if top else ("└── " if last else "├── ")
        lines = [f"{prefix}{branch}{node_ref}{label}"]
        below = children(node_ref)
        inner = prefix if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(below):
            hash_ = f"  {child.hash[:19]}..." if child.hash else ""
            lines += draw(child.ref, hash_, inner, i == len(below) - 1, False)
        return lines

    return draw(ref, "", "", True, True)


def lineage(path: str, ref: str, downstream: bool) -> int:
    with lakecore.open(path, readonly=True) as lake:
        lines = lineage_tree(lake, ref, "downstream" if downstream else "upstream")
    for line in lines:
        print(line)
    if len(lines) == 1:
        print("(nothing " + ("was made from it)" if downstream else "it was made from)"))
    return 0


def verify(path: str, fast: bool, anchor: str | None) -> int:
    kept = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or not digest:
            raise lakecore.ValidationError(f"--anchor: expected SEQ:HASH as printed by verify "
                                           f"(audit head), got {anchor!r}")
        kept = (int(seq), digest)
    with lakecore.open(path, readonly=True) as lake:
        report = lake.verify(fast=fast, anchor=kept)
        head = lake.audit_head()
    for problem in report.problems:
        print(f"problem: {problem}")
    print(f"verify: {'ok' if report.ok else f'{len(report.problems)} problem(s)'} "
          f"({report.files_checked} files checked)")
    if head is not None:
        print(f"audit head: {head[0]}:{head[1]} (keep it outside the lake; --anchor checks "
              f"the log still holds it)")
    return 0 if report.ok else 1


_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> dt.timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` or ``0`` as a timedelta."""
    number, unit = text[:-1], text[-1:]
    if text.strip() == "0":
        return dt.timedelta(0)
    if unit not in _UNITS or not number.isdigit():
        raise lakecore.ValidationError(f"--retain: expected a duration like 7d, 12h, 30m, 45s "
                                       f"or 0, got {text!r}")
    return dt.timedelta(**{_UNITS[unit]: int(number)})


def vacuum(path: str, retain: str) -> int:
    keep = parse_duration(retain)
    with lakecore.open(path) as lake:
        result = lake.vacuum(retain=keep)
    for ref, horizon in sorted(result.horizons.items()):
        print(f"{ref}: commits {horizon} and later kept whole")
    print(f"vacuum: {result.files_deleted} file(s) deleted, {result.bytes_freed:,} bytes freed")
    return 0


def forget(path: str, keys: list[str], reason: str, groups: list[str] | None) -> int:
    columns: dict[str, list] = {}
    for text in keys:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise lakecore.ValidationError(f"--key: expected COLUMN=VALUE, got {text!r}")
        columns.setdefault(name, []).append(_key_value(value))
    if len({len(v) for v in columns.values()}) > 1:
        raise lakecore.ValidationError("--key: give each column the same number of times "
                                       "(one value per entity)")
    with lakecore.open(path) as lake:
        report = lake.forget(columns, groups=groups, reason=reason)
    print(report)
    return 0


def _key_value(text: str):
    """A key value from the command line: an integer when it reads as one, else the text."""
    try:
        return int(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakecore", description="lakecore: an embedded, single-process AI lakehouse.",
        epilog="Refs: fg:NAME@VERSION, fg:NAME@VERSION#COMMIT, fv:NAME@VERSION, "
               "td:NAME@VERSION/TD_VERSION, model:NAME@VERSION. Errors print one line on "
               "stderr with exit status 2.")
    parser.add_argument("--version", action="version", version=f"lakecore {lakecore.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    demo = command("quickstart", "build a demo lake end to end",
                   "Generate card transactions, ingest two feature groups (one online), define "
                   "a feature view with transforms, build training data with a train/test "
                   "split, train and register a numpy model with the alias 'production', score "
                   "cards from the online store, verify every hash and print the model's "
                   "lineage, with timings.")
    demo.add_argument("path", nargs="?", default=None,
                      help="a new or empty folder for the lake (None: a new temporary folder)")
    demo.add_argument("--rows", type=int, default=200_000, help="transactions to generate")
    show = command("info", "what a lake holds",
                   "List the lake's feature groups (keys, online, commits), feature views with "
                   "their training data versions, models with metrics and aliases, and the "
                   "number of audit events. Opens the lake read-only.")
    show.add_argument("path", help="the lake folder")
    commits = command("history", "a feature group's commits",
                      "Print a feature group's commits, oldest first: version, time, operation, "
                      "rows added and removed, hash; with #COMMIT only that commit.")
    commits.add_argument("path", help="the lake folder")
    commits.add_argument("ref", help="fg:NAME@VERSION or fg:NAME@VERSION#COMMIT")
    trace = command("lineage", "what an object was made from (or made)",
                    "Draw the lineage of an object as a tree: a model's training data, its "
                    "feature view and the exact table commits (upstream), or the views, "
                    "datasets and models made from a group or commit (--downstream).")
    trace.add_argument("path", help="the lake folder")
    trace.add_argument("ref", help="fg:NAME@V[#COMMIT], fv:NAME@V, td:NAME@V/TD or model:NAME@V")
    trace.add_argument("--downstream", action="store_true", help="what was made from it")
    check = command("verify", "re-hash everything; exit status 1 on problems",
                    "Re-hash every file the lake needs and check every commit, dataset and "
                    "model hash and the audit chain; print each problem. Exit status 0 when "
                    "clean, 1 when problems are found.")
    check.add_argument("path", help="the lake folder")
    check.add_argument("--fast", action="store_true",
                       help="trust files whose inode, mtime and size are unchanged since the "
                            "last verify")
    check.add_argument("--anchor", metavar="SEQ:HASH", default=None,
                       help="an audit head printed by an earlier verify, kept outside the "
                            "lake: the audit log must still hold that event")
    watch = command("monitor", "compare what a model served with its training data",
                    "Compare the features a model version's predictors logged (log=True) with "
                    "its training data's train split: PSI for numbers, Jensen-Shannon distance "
                    "for strings and booleans. Exit status 1 when any feature drifted.")
    watch.add_argument("path", help="the lake folder")
    watch.add_argument("ref", help="model:NAME@VERSION")
    watch.add_argument("--html", metavar="FILE", default=None,
                       help="also write the report as one self-contained HTML page")
    describe = command("stats", "print a feature group's column statistics",
                       "Print count, nulls, distinct values, min, max, mean, std and the most "
                       "frequent values of every column of a feature group at a commit "
                       "(the latest when none is given).")
    describe.add_argument("path", help="the lake folder")
    describe.add_argument("ref", help="fg:NAME@VERSION or fg:NAME@VERSION#COMMIT")
    sweep = command("vacuum", "delete the data files only old commits need",
                    "Delete the data files that only commits older than --retain need (keeping "
                    "every commit a training dataset was made from), and files crashed writers "
                    "left more than an hour ago. Audited; verify stays clean.")
    sweep.add_argument("path", help="the lake folder")
    sweep.add_argument("--retain", default="7d",
                       help="how long a replaced version stays readable: 7d, 12h, 30m, 45s or 0")
    erase = command("forget", "erase an entity from every version, store and log",
                    "Erase the rows of an entity (GDPR article 17) from every version of every "
                    "feature group whose primary key holds the key columns, prediction logs "
                    "included, and from the online store; audited with the reason and a "
                    "salted hash of the keys. Prints what was rewritten.")
    erase.add_argument("path", help="the lake folder")
    erase.add_argument("--key", action="append", required=True, metavar="COLUMN=VALUE",
                       help="a key column and value (repeat for more columns or entities)")
    erase.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    erase.add_argument("--group", action="append", default=None, metavar="NAME",
                       help="only these groups (and prediction logs); default: every group "
                            "whose primary key holds the key columns")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "quickstart":
            if args.rows < 100:
                parser.error("--rows must be at least 100")
            return quickstart(args.path, args.rows)
        if args.command == "info":
            return info(args.path)
        if args.command == "history":
            return history(args.path, args.ref)
        if args.command == "lineage":
            return lineage(args.path, args.ref, args.downstream)
        if args.command == "verify":
            return verify(args.path, args.fast, args.anchor)
        if args.command == "vacuum":
            return vacuum(args.path, args.retain)
        if args.command == "stats":
            return stats(args.path, args.ref)
        if args.command == "monitor":
            return monitor(args.path, args.ref, args.html)
        if args.command == "forget":
            return forget(args.path, args.key, args.reason, args.group)
        parser.print_usage(sys.stderr)
        print("lakecore: error: a command is required (lakecore --help lists them)",
              file=sys.stderr)
        return 2
    except lakecore.LakeError as exc:
        message = " ".join(str(exc).split())        # one line, whatever the message holds
        print(f"{chr(10) if _mid_line else ''}lakecore: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lakecore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
