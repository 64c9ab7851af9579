"""The run store: every training run and its per-epoch metrics, in SQLite (WAL mode).

One writer (the training process) and any number of readers (the dashboard, ``runs list``) use the
same file at once: WAL lets readers see the last committed state while a run writes, and every
operation opens its own short-lived connection, so a store object is safe to share across threads.
Each run also has a directory ``runs_dir/<run_id>/`` for its checkpoints, log and record lists.

The store mirrors what it records into each run's directory (``config.json``, ``run.json`` with the
run's row, ``epochs.jsonl`` one line per epoch, ``summary.json``), so a damaged ``runs.sqlite``
loses nothing: opening the store runs SQLite's quick check, and a damaged file (empty, truncated,
garbage header or page) is moved aside with a timestamp and the store is rebuilt from the run
directories (:func:`repair`). The rebuild leaves a notice that the command line prints and the pages
show once (:func:`take_repair_notice`).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcore import paths as ecg_paths
from ecgcore.paths import atomic_write_json, atomic_write_text
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
STORE_NAME = "runs.sqlite"
#: Files in each run directory from which :func:`repair` rebuilds the store.
CONFIG_FILE, ROW_FILE, EPOCHS_FILE, SUMMARY_FILE = "config.json", "run.json", "epochs.jsonl", "summary.json"
NOTICE_FILE = ".repair-notice.txt"
#: Stores this process opened, and the (inode, size, mtime) at which each last passed its check.
_OPENED: set[Path] = set()
_CHECKED: dict[Path, tuple[int, int, int] | None] = {}


def _checked_key(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@contextmanager
def _store_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the store's directory while one process checks (and maybe rebuilds) it."""
    with open(root / ".store.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _damage(path: Path) -> str | None:
    """What is wrong with the store file (SQLite's quick check), or ``None`` when it is sound or absent."""
    if not path.exists():
        return None
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        with closing(sqlite3.connect(path, timeout=LOCK_TIMEOUT_S)) as con:
            problems = [row[0] for row in con.execute("PRAGMA quick_check")]
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "unable to open" in str(exc):
            raise
        return f"SQLite cannot read it ({exc})"
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it ({exc})"
    if problems != ["ok"]:
        return f"SQLite's quick check failed ({'; '.join(problems[:3])})"
    if tables and not {"runs", "epochs"} <= tables:
        return f"it lacks the runs and epochs tables (has {', '.join(sorted(tables))})"
    return None


@dataclass
class RepairReport:
    """What :func:`repair` found and did."""

    root: Path
    problem: str | None
    moved_to: Path | None = None
    recovered: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def message(self, show: Callable[[Path], str] = str) -> str:
        """One paragraph for the command line and the app's banner (``show`` renders the store's path)."""
        where = show(self.root / STORE_NAME)
        if self.problem is None and not self.recovered:
            return f"the run store {where} is sound; every run directory is in it"
        head = (
            f"the run store {where} was damaged ({self.problem}); it was moved to "
            f"{self.moved_to.name if self.moved_to else '(nothing to move)'} and rebuilt from the run "
            f"directories: {len(self.recovered)} run(s) recovered"
            if self.problem is not None
            else f"{len(self.recovered)} run directory(ies) missing from the store were added back"
        )
        if self.skipped:
            head += "; not recovered: " + "; ".join(f"{name} ({why})" for name, why in self.skipped.items())
        return head


def _read_json(path: Path) -> Any:
    """A JSON file's contents, or ``None`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_epochs(path: Path) -> list[dict]:
    """The epochs of ``epochs.jsonl``, the last line per epoch winning (a torn last line is skipped)."""
    by_epoch: dict[int, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
            by_epoch[int(entry["epoch"])] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return [by_epoch[e] for e in sorted(by_epoch)]


def _recover_run(con: sqlite3.Connection, run_dir: Path) -> str | None:
    """Insert the run kept in ``run_dir`` into the store; returns why it could not, or ``None``."""
    config = _read_json(run_dir / CONFIG_FILE)
    if not isinstance(config, dict):  # older runs: the checkpoint's description carries the config
        described = _read_json(run_dir / "last.json") or _read_json(run_dir / "best.json") or {}
        config = described.get("config") if isinstance(described, dict) else None
    if not isinstance(config, dict):
        return f"no {CONFIG_FILE} nor a checkpoint description"
    try:
        train_config = TrainConfig.from_dict(config)
    except (TypeError, ValueError, KeyError) as exc:
        return f"{CONFIG_FILE} is not a training configuration ({exc})"
    row = _read_json(run_dir / ROW_FILE)
    row = row if isinstance(row, dict) else {}
    summary = _read_json(run_dir / SUMMARY_FILE)
    summary = summary if isinstance(summary, dict) else None
    status = row.get("status")
    if summary is not None and summary.get("status") == "done":
        status = "done"
    elif status not in STATUSES or status == "done":
        status = "interrupted" if (run_dir / "last.safetensors").exists() else "failed"
    created = row.get("created") or datetime.fromtimestamp(run_dir.stat().st_mtime, UTC).isoformat(
        timespec="seconds"
    )
    labels = _read_json(run_dir / LABELS_FILE)
    labels = labels if isinstance(labels, dict) else row
    values = {column: row.get(column) for column in _UPDATABLE}
    values.update({column: labels.get(column) for column in LABEL_COLUMNS})
    values.update(
        status=status,
        summary_json=json.dumps(summary, default=str) if summary is not None else None,
        message=row.get("message") or "recovered from its run directory",
    )
    con.execute(
        "INSERT OR REPLACE INTO runs (id, created, updated, task, model, data, config_key, config_json, "
        + ", ".join(values)
        + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        + ", ".join("?" * len(values))
        + ")",
        (
            run_dir.name,
            created,
            row.get("updated") or created,
            train_config.task,
            train_config.model,
            train_config.data,
            train_config.key(),
            json.dumps(train_config.to_dict(), sort_keys=True),
            *values.values(),
        ),
    )
    for e in _read_epochs(run_dir / EPOCHS_FILE):
        con.execute(
            "INSERT OR REPLACE INTO epochs (run_id, epoch, step, train_loss, val_loss, lr, time_s, metrics_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_dir.name,
                e["epoch"],
                e.get("step", 0),
                e.get("train_loss"),
                e.get("val_loss"),
                e.get("lr"),
                e.get("time_s"),
                json.dumps(e.get("metrics") or {}, default=str),
            ),
        )
    return None


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _rebuild(root: Path, problem: str | None) -> RepairReport:
    """Move a damaged store aside (with its WAL files) and rebuild it from the run directories.

    With ``problem`` ``None`` (a sound store) nothing is moved; run directories missing from the
    store are added. Called with the store lock held.
    """
    path = root / STORE_NAME
    report = RepairReport(root=root, problem=problem)
    if problem is not None and path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        report.moved_to = root / f"{STORE_NAME}.damaged-{stamp}"
        n = 1
        while report.moved_to.exists():
            n += 1
            report.moved_to = root / f"{STORE_NAME}.damaged-{stamp}-{n}"
        os.replace(path, report.moved_to)
        for suffix in ("-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{report.moved_to}{suffix}")
    with closing(sqlite3.connect(path, timeout=LOCK_TIMEOUT_S)) as con:
        _enable_wal(con)
        with con:
            con.executescript(_SCHEMA)
            _add_label_columns(con)
            known = {row[0] for row in con.execute("SELECT id FROM runs")}
            for run_dir in _run_dirs(root):
                if run_dir.name in known:
                    continue
                why = _recover_run(con, run_dir)
                if why is None:
                    report.recovered.append(run_dir.name)
                elif problem is not None or (run_dir / CONFIG_FILE).exists():
                    report.skipped[run_dir.name] = why
    if problem is not None or report.recovered:  # for the browser: no absolute server paths
        atomic_write_text(root / NOTICE_FILE, report.message(ecg_paths.display_path))
    return report


def repair(runs_dir: Path | str | None = None) -> RepairReport:
    """Check the store now: rebuild a damaged one, and add back run directories it does not list.

    ``python -m ecgcore runs repair`` calls this; opening a :class:`RunStore` rebuilds a damaged
    file by itself, so this is for run directories orphaned by an older store.
    """
    root = Path(runs_dir) if runs_dir is not None else ecg_paths.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _store_lock(root):
        report = _rebuild(root, _damage(root / STORE_NAME))
        (root / NOTICE_FILE).unlink(missing_ok=True)  # the caller shows the report itself
    _CHECKED.pop(root / STORE_NAME, None)
    return report


def take_repair_notice(runs_dir: Path | str | None = None) -> str | None:
    """The message of the last repair not yet shown, once (it is removed as it is read)."""
    root = Path(runs_dir) if runs_dir is not None else ecg_paths.runs_dir()
    notice = root / NOTICE_FILE
    try:
        text = notice.read_text(encoding="utf-8")
        notice.unlink()
    except OSError:
        return None
    return text


def pending_notices() -> list[str]:
    """Repair notices of every store this process opened, once each (the command line prints them)."""
    return [text for root in sorted(_OPENED) if (text := take_repair_notice(root))]


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
        self.path = self.root / STORE_NAME
        #: What :func:`repair` did when this open found the file damaged (else ``None``).
        self.repaired: RepairReport | None = None
        _OPENED.add(self.root.resolve())
        key = _checked_key(self.path)
        if key is not None and key == _CHECKED.get(self.path):
            return
        with _store_lock(self.root):
            if _damage(self.path) is not None:
                self.repaired = _rebuild(self.root, _damage(self.path))
            with self._connect() as con:
                con.executescript(_SCHEMA)
                _add_label_columns(con)
        _CHECKED[self.path] = _checked_key(self.path)

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
        atomic_write_json(self.run_dir(run_id) / CONFIG_FILE, config.to_dict())
        self._mirror_row(run_id)
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
        if "summary_json" in fields:
            atomic_write_text(self.run_dir(run_id) / SUMMARY_FILE, fields["summary_json"])
        self._mirror_row(run_id)

    def _mirror_row(self, run_id: str) -> None:
        """Copy the run's row (without config and summary, which have their own files) to ``run.json``."""
        row = dict(self._row(run_id))
        for column in ("config_json", "summary_json"):
            row.pop(column)
        atomic_write_json(self.run_dir(run_id) / ROW_FILE, row)

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
        line = {"epoch": epoch, "step": step, "train_loss": train_loss, "val_loss": val_loss, "lr": lr}
        line.update(time_s=time_s, metrics=metrics)
        with open(self.run_dir(run_id) / EPOCHS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")

    def truncate_epochs(self, run_id: str, after: int) -> None:
        """Forget epochs after ``after`` (a resumed run recomputes them)."""
        with self._connect() as con:
            con.execute("DELETE FROM epochs WHERE run_id = ? AND epoch > ?", (run_id, after))
        kept = [e for e in _read_epochs(self.run_dir(run_id) / EPOCHS_FILE) if e["epoch"] <= after]
        atomic_write_text(
            self.run_dir(run_id) / EPOCHS_FILE, "".join(json.dumps(e, default=str) + "\n" for e in kept)
        )

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


def check_resumable(store: RunStore, run_id: str, *, starting: bool = False) -> dict:
    """The run, if it can be resumed; else ``ValueError`` saying why, with the run left as it was.

    A finished run has nothing to resume; an active one must be cancelled first (``starting``: the
    worker has just queued it for this resume); a run that never finished an epoch has no checkpoint.
    """
    run = store.get_run(run_id)
    if run["status"] in ACTIVE and not (starting and run["status"] == "queued"):
        raise ValueError(f"run {run_id} is {run['status']} (pid {run['pid']}); cancel it before resuming")
    if run["status"] == "done":
        raise ValueError(f"run {run_id} is done: nothing to resume (start a new run to train again)")
    run_dir = store.run_dir(run_id)
    if not (run_dir / "last.safetensors").exists():
        raise ValueError(
            f"run {run_id} has no checkpoint in {run_dir.name} to resume from; start it again instead"
        )
    return run


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
