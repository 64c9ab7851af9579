"""Holter rhythm events and summary from labelled beats: ectopic runs, bigeminy, pauses, heart rate.

:func:`holter_events` turns a record's beats (sample indices, EC57 classes, sampling rate) into the
events and the summary a Holter report gives. Every rule is stated here; the thresholds live in
:class:`EventRules` and can be changed.

Ectopic sequences (V = ventricular, S = supraventricular): a maximal stretch of consecutive beats of
one class, consecutive in the record's beat list (any other class ends it, and so does a pause or an
artefact between two of its beats: beats on either side of a pause are escape or separate beats,
not one run).

* 1 beat: an isolated ectopic beat (counted in the summary and per hour; not listed as an event,
  the per-beat list holds each one).
* 2 beats: a couplet.
* 3 or more beats: a run, with its rate = 60 x (beats - 1) / (time from its first to its last beat).
  A V run faster than ``vt_bpm`` (100 bpm) is **VT**; a slower one a "V run (slow)" (an
  idioventricular rhythm). The 2017 AHA/ACC/HRS guideline for ventricular arrhythmias (Al-Khatib et
  al., table of definitions) defines VT as >= 3 consecutive ventricular complexes at a rate > 100 bpm
  (cycle length < 600 ms); sustained when it lasts > 30 s (counted apart, :data:`SUSTAINED_S`; the
  same 30 s for SVT is ours). An S run faster than ``svt_bpm`` (100 bpm)
  is **SVT**, a slower one an "S run (slow)" (our rule, by analogy). A run of exactly 3 beats is also
  counted as a triplet.

Bigeminy and trigeminy (our rule): at least ``min_cycles`` (3) consecutive cycles of N V (bigeminy)
or N N V (trigeminy), N meaning a beat of class N; any other class, a pause or an artefact breaks
the pattern. An episode runs
from its first N to its last V. Its V beats are also counted as isolated V (but a last V that begins a
couplet or run, as in N V N V N V V, which counts there).

Pauses (our rule, a common Holter convention): an RR interval longer than ``pause_s`` (2.0 s)
between two consecutive analysed beats. When a detection the artefact filter rejected lies inside
it, or it overlaps an excluded span (signal that was not analysed), the beats around it are not
known: it is listed as "pause (artefact)" and **not** counted as a pause.

Heart rate (our rule): per clock minute of the record, 60 / mean RR of the RR intervals that end in
that minute, leaving out the intervals around an artefact (as for pauses). The mean heart rate is
60 / mean of all those RR. The minimum and the maximum are over the minutes whose intervals cover at
least ``min_minute_s`` (30 s), and each is given with its minute's start. Bradycardia / tachycardia
time: the total time of those minutes slower than ``brady_bpm`` (60) / faster than ``tachy_bpm``
(100), counted by the RR time each minute covers.

Burden: V (S) beats as a percentage of all analysed beats. Per hour (of recording, from its start):
beats, V and S beats, V couplets and runs, S runs, pauses, the hour's mean heart rate.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ecgcore.beats.aami import CLASSES

#: Event kinds, in report order.
KINDS: tuple[str, ...] = (
    "VT",
    "V run (slow)",
    "V couplet",
    "bigeminy",
    "trigeminy",
    "SVT",
    "S run (slow)",
    "S couplet",
    "pause",
    "pause (artefact)",
)


#: A VT / SVT lasting longer than this (s, first to last beat) is counted as sustained.
SUSTAINED_S = 30.0


@dataclass(frozen=True)
class EventRules:
    """The thresholds of the event rules (see the module docstring)."""

    pause_s: float = 2.0
    vt_bpm: float = 100.0
    svt_bpm: float = 100.0
    min_cycles: int = 3
    brady_bpm: float = 60.0
    tachy_bpm: float = 100.0
    min_minute_s: float = 30.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"event rule {name}={value!r}: expected a positive number")

    def describe(self) -> str:
        """The rules in one line, for reports."""
        return (
            f"run ≥ 3 beats (VT / SVT above {self.vt_bpm:g} / {self.svt_bpm:g} bpm); bigeminy / trigeminy "
            f"≥ {self.min_cycles} cycles; none across a pause (RR > {self.pause_s:g} s) or an artefact; "
            f"HR per clock minute (minutes with ≥ {self.min_minute_s:g} s of RR for min / max); "
            f"bradycardia < {self.brady_bpm:g}, "
            f"tachycardia > {self.tachy_bpm:g} bpm"
        )


@dataclass(frozen=True)
class Event:
    """One rhythm event: its kind, first and last beat (samples), number of beats and rate (bpm)."""

    kind: str
    start: int
    end: int
    beats: int
    rate_bpm: float | None
    fs: float

    @property
    def start_s(self) -> float:
        return self.start / self.fs

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / self.fs

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "start": int(self.start),
            "end": int(self.end),
            "start_s": round(self.start_s, 2),
            "time": clock(self.start_s),
            "duration_s": round(self.duration_s, 2),
            "beats": int(self.beats),
            "rate_bpm": None if self.rate_bpm is None else round(self.rate_bpm, 1),
        }


@dataclass(frozen=True)
class MinuteRates:
    """Heart rate per clock minute (NaN where no interval ends in it) and the RR seconds each covers."""

    hr: np.ndarray
    covered_s: np.ndarray


@dataclass
class HolterEvents:
    """The events of a record (in time order) and its summary (a JSON-ready dict)."""

    events: list[Event] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.events)

    def starts(self) -> dict[str, list[float]]:
        """Start times (s) of the events of each kind present, in :data:`KINDS` order."""
        return {k: [e.start_s for e in self.events if e.kind == k] for k in KINDS if self.count(k)}

    def to_json(self) -> dict:
        return {"summary": self.summary, "events": [e.to_json() for e in self.events]}


def clock(seconds: float) -> str:
    """Seconds from the record's start as h:mm:ss."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def artefact_intervals(
    samples: np.ndarray, rejected: np.ndarray | None = None, spans: np.ndarray | None = None
) -> np.ndarray:
    """For each RR interval (between beats i and i+1), whether an artefact lies inside it: a rejected
    detection strictly between the beats, or an excluded span ``[start, stop)`` overlapping it."""
    samples = np.asarray(samples, dtype=np.int64)
    out = np.zeros(max(samples.size - 1, 0), dtype=bool)
    if out.size == 0:
        return out
    if rejected is not None and np.size(rejected):
        r = np.sort(np.asarray(rejected, dtype=np.int64))
        out |= np.searchsorted(r, samples[1:], "left") > np.searchsorted(r, samples[:-1], "right")
    for lo, hi in np.asarray(spans if spans is not None else np.zeros((0, 2)), dtype=np.int64).reshape(-1, 2):
        out |= (samples[:-1] < hi) & (samples[1:] > lo)
    return out


def minute_rates(
    samples: np.ndarray, fs: float, n_samples: int, excluded: np.ndarray | None = None
) -> MinuteRates:
    """Heart rate per clock minute: 60 / mean of the RR intervals ending in it (``excluded`` intervals,
    e.g. :func:`artefact_intervals`, left out)."""
    minutes = int(np.ceil(n_samples / (60 * fs)))
    samples = np.asarray(samples, dtype=np.int64)
    rr = np.diff(samples) / fs
    which = samples[1:] // int(60 * fs)
    keep = ~excluded if excluded is not None else np.ones(rr.size, dtype=bool)
    which, rr = which[keep & (which < minutes)], rr[keep & (which < minutes)]
    n = np.bincount(which, minlength=minutes).astype(np.float64)
    covered = np.bincount(which, weights=rr, minlength=minutes)
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = np.where(n > 0, 60.0 * n / covered, np.nan)
    return MinuteRates(hr, covered)


def _sequences(is_class: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First index and length of every maximal run of True in ``is_class`` that no break splits
    (``breaks[i]``: the interval between beats i and i+1 is a pause or holds an artefact)."""
    joined = is_class[1:] & is_class[:-1] & ~breaks  # beat i+1 continues beat i's sequence
    starts = np.flatnonzero(is_class & ~np.concatenate([[False], joined]))
    stops = np.flatnonzero(is_class & ~np.concatenate([joined, [False]])) + 1
    return starts, stops - starts


def _ectopic(
    samples: np.ndarray,
    classes: np.ndarray,
    fs: float,
    breaks: np.ndarray,
    name: str,
    fast_bpm: float,
    fast_kind: str,
) -> tuple[list[Event], dict]:
    """Couplets and runs of class ``name`` (events) and their counts (summary)."""
    starts, lengths = _sequences(classes == CLASSES.index(name), breaks)
    events: list[Event] = []
    runs: list[Event] = []
    for i, n in zip(starts, lengths):
        first, last = int(samples[i]), int(samples[i + n - 1])
        if n == 2:
            events.append(Event(f"{name} couplet", first, last, 2, 60.0 * fs / (last - first), fs))
        elif n >= 3:
            rate = 60.0 * (n - 1) * fs / max(last - first, 1)
            run = Event(fast_kind if rate > fast_bpm else f"{name} run (slow)", first, last, int(n), rate, fs)
            events.append(run)
            runs.append(run)
    n_beats = int(lengths.sum())
    summary = {
        "beats": n_beats,
        "burden_pct": round(100.0 * n_beats / samples.size, 2) if samples.size else 0.0,
        "isolated": int(np.sum(lengths == 1)),
        "couplets": int(np.sum(lengths == 2)),
        "triplets": int(np.sum(lengths == 3)),
        "runs": len(runs),
        fast_kind.lower(): sum(r.kind == fast_kind for r in runs),
        f"{fast_kind.lower()}_sustained": sum(
            r.kind == fast_kind and r.duration_s > SUSTAINED_S for r in runs
        ),
        "longest_run": _brief(max(runs, key=lambda r: (r.beats, -r.start), default=None)),
        "fastest_run": _brief(max(runs, key=lambda r: (r.rate_bpm, -r.start), default=None)),
    }
    return events, summary


def _brief(event: Event | None) -> dict | None:
    """An event's beats, rate and time, for the summary."""
    if event is None:
        return None
    return {k: v for k, v in event.to_json().items() if k in ("beats", "rate_bpm", "start_s", "time")}


def _patterns(
    samples: np.ndarray, classes: np.ndarray, fs: float, breaks: np.ndarray, min_cycles: int
) -> list[Event]:
    """Bigeminy (N V) and trigeminy (N N V) episodes of at least ``min_cycles`` cycles, none across a break."""
    text = "".join(CLASSES[c] + ("|" if i < breaks.size and breaks[i] else "") for i, c in enumerate(classes))
    beat_at = np.cumsum([ch != "|" for ch in text]) - 1  # text position -> beat index
    events = []
    for kind, cycle in (("bigeminy", "NV"), ("trigeminy", "NNV")):
        for m in re.finditer(f"(?:{cycle}){{{min_cycles},}}", text):
            first, last = int(beat_at[m.start()]), int(beat_at[m.end() - 1])
            beats = last - first + 1
            rate = 60.0 * (beats - 1) * fs / max(int(samples[last] - samples[first]), 1)
            events.append(Event(kind, int(samples[first]), int(samples[last]), beats, rate, fs))
    return events


def holter_events(
    samples: np.ndarray,
    classes: np.ndarray,
    fs: float,
    n_samples: int,
    rejected: np.ndarray | None = None,
    spans: np.ndarray | None = None,
    rules: EventRules = EventRules(),
) -> HolterEvents:
    """The rhythm events and summary of a record's beats (see the module docstring for every rule).

    ``samples`` (sorted) and ``classes`` (EC57 class indices, :data:`ecgcore.beats.aami.CLASSES`) are
    the analysed beats; ``rejected`` the detections the artefact filter left out and ``spans``
    (``[k, 2]`` sample ranges) signal that was not analysed: both keep a pause from being reported.
    """
    samples = np.asarray(samples, dtype=np.int64)
    classes = np.asarray(classes, dtype=np.int64)
    if samples.shape != classes.shape:
        raise ValueError(f"{samples.size} beat samples but {classes.size} classes")
    if samples.size > 1 and np.any(np.diff(samples) <= 0):
        raise ValueError("beat samples must be strictly increasing")
    artefact = artefact_intervals(samples, rejected, spans)
    rr = np.diff(samples) / fs
    breaks = artefact | (rr > rules.pause_s)  # no couplet, run or episode across a pause or an artefact
    v_events, ventricular = _ectopic(samples, classes, fs, breaks, "V", rules.vt_bpm, "VT")
    s_events, supraventricular = _ectopic(samples, classes, fs, breaks, "S", rules.svt_bpm, "SVT")
    episodes = _patterns(samples, classes, fs, breaks, rules.min_cycles)
    for kind in ("bigeminy", "trigeminy"):
        mine = [e for e in episodes if e.kind == kind]
        ventricular[f"{kind}_episodes"] = len(mine)
        ventricular[f"{kind}_s"] = round(sum(e.duration_s for e in mine), 1)

    pauses: list[Event] = []
    for i in np.flatnonzero(rr > rules.pause_s):
        kind = "pause (artefact)" if artefact[i] else "pause"
        pauses.append(Event(kind, int(samples[i]), int(samples[i + 1]), 2, None, fs))
    real = [p for p in pauses if p.kind == "pause"]
    longest = max(real, key=lambda p: (p.duration_s, -p.start), default=None)

    rates = minute_rates(samples, fs, n_samples, artefact)
    events = sorted(v_events + s_events + episodes + pauses, key=lambda e: (e.start, KINDS.index(e.kind)))
    summary = {
        "duration_s": round(n_samples / fs, 1),
        "beats": int(samples.size),
        "heart_rate": _heart_rate(rates, rr[~artefact], rules),
        "ventricular": ventricular,
        "supraventricular": supraventricular,
        "pauses": {
            "count": len(real),
            "longest_s": round(longest.duration_s, 2) if longest else None,
            "longest_at_s": round(longest.start_s, 1) if longest else None,
            "longest_time": clock(longest.start_s) if longest else None,
            "artefact_excluded": len(pauses) - len(real),
        },
        "per_hour": _per_hour(samples, classes, fs, n_samples, events, rr, artefact),
        "rules": asdict(rules),
    }
    return HolterEvents(events, summary)


def _heart_rate(rates: MinuteRates, rr: np.ndarray, rules: EventRules) -> dict:
    """Mean, minimum and maximum heart rate (with the minute each happened), brady/tachy time."""
    eligible = np.isfinite(rates.hr) & (rates.covered_s >= rules.min_minute_s)
    out: dict = {
        "method": (
            f"per clock minute, 60 / mean RR of the intervals ending in it; min / max over minutes with "
            f">= {rules.min_minute_s:g} s of RR; mean over all RR; intervals around artefacts left out"
        ),
        "mean_bpm": round(60.0 / float(rr.mean()), 1) if rr.size else None,
        "min_bpm": None,
        "min_at_s": None,
        "min_time": None,
        "max_bpm": None,
        "max_at_s": None,
        "max_time": None,
        "bradycardia_s": round(float(rates.covered_s[eligible & (rates.hr < rules.brady_bpm)].sum()), 1),
        "tachycardia_s": round(float(rates.covered_s[eligible & (rates.hr > rules.tachy_bpm)].sum()), 1),
    }
    if eligible.any():
        hr = np.where(eligible, rates.hr, np.nan)
        for name, minute in (("min", int(np.nanargmin(hr))), ("max", int(np.nanargmax(hr)))):
            out |= {f"{name}_bpm": round(float(hr[minute]), 1), f"{name}_at_s": 60.0 * minute}
            out[f"{name}_time"] = clock(60.0 * minute)
    return out


def _per_hour(
    samples: np.ndarray,
    classes: np.ndarray,
    fs: float,
    n_samples: int,
    events: list[Event],
    rr: np.ndarray,
    artefact: np.ndarray,
) -> list[dict]:
    """Counts per hour of recording (an event counts in the hour it starts)."""
    hour = int(3600 * fs)
    n_hours = max(int(np.ceil(n_samples / hour)), 1)
    beat_hour = samples // hour
    rr_hour = samples[1:] // hour
    rows = []
    for h in range(n_hours):
        here = [e.kind for e in events if e.start // hour == h]
        rr_here = rr[(rr_hour == h) & ~artefact]
        rows.append(
            {
                "hour": h,
                "beats": int(np.sum(beat_hour == h)),
                "mean_hr_bpm": round(60.0 / float(rr_here.mean()), 1) if rr_here.size else None,
                "V": int(np.sum((beat_hour == h) & (classes == CLASSES.index("V")))),
                "S": int(np.sum((beat_hour == h) & (classes == CLASSES.index("S")))),
                "V couplets": here.count("V couplet"),
                "V runs": here.count("VT") + here.count("V run (slow)"),
                "S runs": here.count("SVT") + here.count("S run (slow)"),
                "pauses": here.count("pause"),
            }
        )
    return rows
