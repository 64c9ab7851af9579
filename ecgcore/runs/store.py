"""The run store: every training run and its per-epoch metrics, in SQLite (WAL mode).

One writer (the training process) and any number of readers (the dashboard, ``runs list``) use the
same file at once: WAL lets readers see the last committed state while a run writes, and every
operation opens its own short-lived connection, so a store object is safe to share across threads.
Each run also has a directory ``runs_dir/<run_id>/`` for its checkpoints, log and record lists.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcore import paths as ecg_paths
from ecgcore.train.config import TrainConfig

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    data TEXT NOT NULL,
    config_key TEXT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL,
    device TEXT,
    pid INTEGER,
    pid_start TEXT,
    epoch INTEGER,
    step INTEGER,
    total_steps INTEGER,
    eta_s REAL,
    message TEXT,
    summary_json TEXT,
    best_checkpoint TEXT,
    last_checkpoint TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    train_loss REAL,
    val_loss REAL,
    lr REAL,
    time_s REAL,
    metrics_json TEXT,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    PRIMARY KEY (run_id, step)
);
CREATE INDEX IF NOT EXISTS runs_key ON runs(config_key, status);
"""

#: Columns of ``runs`` that :meth:`RunStore.update` may set.
_UPDATABLE = (
    "status",
    "device",
    "pid",
    "pid_start",
    "epoch",
    "step",
    "total_steps",
    "eta_s",
    "message",
    "summary_json",
    "best_checkpoint",
    "last_checkpoint",
    "error",
)


#: Columns the user writes to tell runs apart (added to older stores by :func:`_add_label_columns`).
LABEL_COLUMNS = ("name", "tags", "notes")
#: The labels' copy in each run directory, so a store rebuilt from the directories keeps them.
LABELS_FILE = "labels.json"


def _add_label_columns(con: sqlite3.Connection) -> None:
    """Migration: a store made before runs could be named gets the name / tags / notes columns."""
    have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    for column in LABEL_COLUMNS:
        if column not in have:
            try:
                con.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
            except sqlite3.OperationalError as exc:  # another process opening the store added it first
                if "duplicate column" not in str(exc):
                    raise


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id(model: str) -> str:
    """A sortable, unique run id: ``20250101-120000-inception1d-3fa2c1``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model}-{secrets.token_hex(3)}"


#: How long a connection waits for another process's lock (s).
LOCK_TIMEOUT_S = 30.0


def _enable_wal(con: sqlite3.Connection) -> None:
    """Switch to WAL (a property of the file, kept once set), retrying while another process switches.

    Two processes opening a new store at once (the ranks of a DDP run) can make SQLite answer
    "database is locked" to the switch at once, without waiting on its busy timeout.
    """
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class RunStore:
    """Runs and epochs in ``runs_dir/runs.sqlite``.

    Parameters
    ----------
    runs_dir
        Directory of the store and of the run directories; default :func:`ecgcore.paths.runs_dir`.
    """

    def __init__(self, runs_dir: Path | str | None = None) -> None:
        self.root = Path(runs_dir) if runs_dir is not None else ecg_paths.runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "runs.sqlite"
        with self._connect() as con:
            con.executescript(_SCHEMA)
            _add_label_columns(con)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode that commits on success; waits up to 30 s for a writer's lock."""
        with closing(sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)) as con:
            con.row_factory = sqlite3.Row
            _enable_wal(con)
            con.execute("PRAGMA synchronous=NORMAL")
            with con:
                yield con

    # --- writing -------------------------------------------------------------------------------
    def create_run(self, config: TrainConfig, run_id: str | None = None, status: str = "queued") -> str:
        """Record a new run (``queued``) and create its directory; returns its id."""
        run_id = run_id or new_run_id(config.model)
        now = _now()
        with self._connect() as con:
            con.execute(
                "INSERT INTO runs (id, created, updated, task, model, data, config_key, config_json, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    now,
                    now,
                    config.task,
                    config.model,
                    config.data,
                    config.key(),
                    json.dumps(config.to_dict(), sort_keys=True),
                    status,
                ),
            )
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def update(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (``status``, ``pid``, ``epoch``, ``summary`` (a dict) ...)."""
        if "summary" in fields:
            fields["summary_json"] = json.dumps(fields.pop("summary"), default=str)
        bad = sorted(set(fields) - set(_UPDATABLE))
        if bad:
            raise ValueError(f"RunStore.update: unknown run fields {bad}; expected some of {_UPDATABLE}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"RunStore.update: status {fields['status']!r}; expected one of {STATUSES}")
        fields["updated"] = _now()
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._connect() as con:
            cur = con.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))
            if cur.rowcount == 0:
                raise KeyError(f"no run {run_id!r} in {self.path}")

    def add_epoch(
        self,
        run_id: str,
        epoch: int,
        step: int,
        *,
        train_loss: float,
        val_loss: float | None,
        lr: float,
        time_s: float,
        metrics: dict,
    ) -> None:
        """Record (or replace, after a resume) one epoch's losses and validation metrics."""
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, step, train_loss, val_loss, lr, time_s, metrics_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, epoch, step, train_loss, val_loss, lr, time_s, json.dumps(metrics, default=str)),
            )

    def truncate_epochs(self, run_id: str, after: int) -> None:
        """Forget epochs after ``after`` (a resumed run recomputes them)."""
        with self._connect() as con:
            con.execute("DELETE FROM epochs WHERE run_id = ? AND epoch > ?", (run_id, after))

    # --- reading -------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The directory holding a run's checkpoints, log and record lists."""
        return self.root / run_id

    def _row(self, run_id: str) -> sqlite3.Row:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        return row

    def get_run(self, run_id: str) -> dict:
        """One run: its columns plus ``config`` (dict), ``summary`` (dict) and ``run_dir``."""
        row = dict(self._row(run_id))
        row["config"] = json.loads(row.pop("config_json"))
        summary = row.pop("summary_json")
        row["summary"] = json.loads(summary) if summary else {}
        row["run_dir"] = str(self.run_dir(run_id))
        return row

    def label(
        self, run_id: str, *, name: str | None = None, tags: list[str] | None = None, notes: str | None = None
    ) -> None:
        """Name, tag and annotate a run (``None`` leaves a field as it is; tags are stored comma-joined).

        Raises
        ------
        KeyError
            If there is no such run.
        """
        fields = {
            "name": None if name is None else name.strip(),
            "tags": None if tags is None else ",".join(dict.fromkeys(t.strip() for t in tags if t.strip())),
            "notes": notes,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        with self._connect() as con:
            if con.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise KeyError(f"no run {run_id!r} in {self.path}")
            if fields:
                con.execute(
                    f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                    (*fields.values(), run_id),
                )
            row = con.execute("SELECT name, tags, notes FROM runs WHERE id = ?", (run_id,)).fetchone()
        ecg_paths.atomic_write_json(self.run_dir(run_id) / LABELS_FILE, dict(row))

    def config(self, run_id: str) -> TrainConfig:
        """The run's :class:`TrainConfig`."""
        return TrainConfig.from_dict(self.get_run(run_id)["config"])

    def list_runs(self) -> pd.DataFrame:
        """All runs, newest first, with headline metrics (``val_*`` / ``test_*``) as columns."""
        with self._connect() as con:
            rows = [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY created DESC, id DESC")]
        records = []
        for row in rows:
            summary = json.loads(row.pop("summary_json") or "{}")
            row["epochs_planned"] = json.loads(row.pop("config_json")).get("epochs")
            row.update(summary.get("headline", {}))
            records.append(row)
        columns = [
            "id",
            "created",
            "task",
            "model",
            "data",
            "status",
            "device",
            "epoch",
            "step",
            "total_steps",
            "eta_s",
        ]
        frame = pd.DataFrame.from_records(records)
        return frame if len(frame) else pd.DataFrame(columns=columns)

    def add_step_loss(self, run_id: str, epoch: int, step: int, loss: float) -> None:
        """Record one step's training loss (streamed during an epoch; a resumed run overwrites its steps)."""
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO steps (run_id, step, epoch, train_loss) VALUES (?, ?, ?, ?)",
                (run_id, step, epoch, loss),
            )

    def steps(self, run_id: str) -> pd.DataFrame:
        """The streamed training losses: step, epoch, train_loss, in step order."""
        with self._connect() as con:
            rows = [
                dict(r)
                for r in con.execute(
                    "SELECT step, epoch, train_loss FROM steps WHERE run_id = ? ORDER BY step", (run_id,)
                )
            ]
        return pd.DataFrame.from_records(rows, columns=["step", "epoch", "train_loss"])

    def epochs(self, run_id: str) -> pd.DataFrame:
        """Per-epoch rows: epoch, step, train_loss, val_loss, lr, time_s and the validation metrics as columns."""
        with self._connect() as con:
            rows = [
                dict(r)
                for r in con.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))
            ]
        for row in rows:
            row.pop("run_id")
            row.update(json.loads(row.pop("metrics_json") or "{}"))
        frame = pd.DataFrame.from_records(rows)
        return (
            frame
            if len(frame)
            else pd.DataFrame(columns=["epoch", "step", "train_loss", "val_loss", "lr", "time_s"])
        )

    def find_done(self, config: TrainConfig) -> str | None:
        """The newest finished run with the same :meth:`TrainConfig.key`, or ``None``."""
        with self._connect() as con:
            row = con.execute(
                "SELECT id FROM runs WHERE config_key = ? AND status = 'done' ORDER BY created DESC, id DESC LIMIT 1",
                (config.key(),),
            ).fetchone()
        return row["id"] if row else None

    def active_runs(self) -> list[dict]:
        """Runs that are queued or running according to the store."""
        with self._connect() as con:
            rows = con.execute("SELECT id, pid, pid_start, status FROM runs WHERE status IN (?, ?)", ACTIVE)
            return [dict(r) for r in rows]


def wait_for(store: RunStore, run_id: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict:
    """Poll until the run has one of ``statuses``; returns the run (raises ``TimeoutError`` otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        run = store.get_run(run_id)
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"run {run_id} still {run['status']!r} after {timeout:.0f} s (wanted {statuses})"
            )
        time.sleep(0.1)
