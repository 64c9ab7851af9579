"""Holter events from labelled beats: runs, couplets, bigeminy, pauses around artefacts, heart rate, and the
report (JSON, HTML file, the ``beats --report`` option)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.events import EventRules, artefact_intervals, holter_events, minute_rates
from ecgcore.beats.holter_report import report_html, summary_sections, write_report
from tests.beats.test_cluster import _analysis

FS = 250.0


def beats(rr_s: list[float], labels: str, start_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Beat samples from RR intervals (s) and one class letter per beat."""
    assert len(labels) == len(rr_s) + 1
    times = start_s + np.concatenate([[0.0], np.cumsum(rr_s)])
    return np.round(times * FS).astype(np.int64), np.array([CLASS_INDEX[c] for c in labels])


def events_of(rr_s, labels, **kwargs):
    samples, classes = beats(rr_s, labels)
    return holter_events(samples, classes, FS, int(samples[-1] + FS), **kwargs)


def kinds(h) -> list[str]:
    return [e.kind for e in h.events]


def test_a_couplet_is_not_a_run():
    h = events_of([0.8] * 5, "NNVVNN")
    v = h.summary["ventricular"]
    assert kinds(h) == ["V couplet"]
    assert (v["couplets"], v["runs"], v["vt"], v["isolated"], v["beats"]) == (1, 0, 0, 0, 2)


def test_three_v_at_120_bpm_are_vt_and_at_80_bpm_a_slow_run():
    fast = events_of([0.8, 0.8, 0.5, 0.5, 0.8], "NNVVVN")
    (vt,) = fast.events
    assert vt.kind == "VT" and vt.beats == 3 and vt.rate_bpm == pytest.approx(120, abs=0.5)
    assert fast.summary["ventricular"]["vt"] == 1 and fast.summary["ventricular"]["triplets"] == 1
    assert fast.summary["ventricular"]["fastest_run"]["rate_bpm"] == pytest.approx(120, abs=0.5)
    slow = events_of([0.8, 0.8, 0.75, 0.75, 0.8], "NNVVVN")
    assert kinds(slow) == ["V run (slow)"] and slow.summary["ventricular"]["vt"] == 0
    assert fast.summary["ventricular"]["vt_sustained"] == 0
    sustained = events_of([0.8] + [0.5] * 62 + [0.8], "N" + "V" * 63 + "N")  # 31 s at 120 bpm
    assert sustained.summary["ventricular"]["vt_sustained"] == 1
    assert (
        events_of([0.8] + [0.5] * 58 + [0.8], "N" + "V" * 59 + "N").summary["ventricular"]["vt_sustained"]
        == 0
    )
    longer = events_of([0.8] + [0.4] * 5 + [0.8], "NVVVVVVN")
    assert longer.summary["ventricular"]["longest_run"]["beats"] == 6
    assert longer.summary["ventricular"]["triplets"] == 0


def test_no_run_or_bigeminy_across_a_pause_or_an_artefact():
    # three V beats with a 2.5 s pause inside: escape beats on either side, not a 3-beat run at 36 bpm
    split = events_of([0.8, 0.8, 2.5, 0.8, 0.8], "NNVVVN")
    assert kinds(split) == ["pause", "V couplet"]
    assert split.summary["ventricular"]["isolated"] == 1 and split.summary["ventricular"]["runs"] == 0
    samples, classes = beats([0.8, 0.5, 0.5, 0.8], "NVVVN")
    whole = holter_events(samples, classes, FS, int(samples[-1] + FS))
    assert kinds(whole) == ["VT"]
    cut = holter_events(samples, classes, FS, int(samples[-1] + FS), rejected=np.array([samples[2] + 20]))
    assert kinds(cut) == ["V couplet"] and cut.summary["ventricular"]["isolated"] == 1
    assert kinds(events_of([0.6, 1.0, 0.6, 2.5, 0.6, 1.0, 0.6], "NVNVNVNV")) == ["pause"]  # 2 + 2 cycles


def test_supraventricular_runs_and_isolated_beats():
    h = events_of([0.8, 0.5, 0.5, 0.5, 0.8, 0.6, 0.8, 0.6, 0.6, 0.8], "NSSSSNSNSSN")
    s = h.summary["supraventricular"]
    assert (s["isolated"], s["couplets"], s["runs"], s["svt"]) == (1, 1, 1, 1)
    assert kinds(h) == ["SVT", "S couplet"]
    assert s["burden_pct"] == pytest.approx(100 * 7 / 11, abs=0.01)


def test_bigeminy_needs_three_alternating_cycles():
    three = events_of([0.6, 1.0] * 3, "NVNVNVN")
    assert kinds(three) == ["bigeminy"] and three.summary["ventricular"]["bigeminy_episodes"] == 1
    assert three.summary["ventricular"]["isolated"] == 3  # its V beats are still isolated V
    assert kinds(events_of([0.6, 1.0] * 2, "NVNVN")) == []  # two cycles
    assert "bigeminy" not in kinds(
        events_of([0.6, 0.6, 1.0, 0.6, 1.0, 0.6], "NVVNVNV")
    )  # broken by a couplet
    ending = events_of([0.6, 1.0, 0.6, 1.0, 0.6, 0.6, 1.0], "NVNVNVVN")  # its last V begins a couplet
    assert kinds(ending) == ["bigeminy", "V couplet"] and ending.summary["ventricular"]["isolated"] == 2
    trigeminy = events_of([0.8, 0.6, 1.0] * 3, "NNVNNVNNVN")
    assert kinds(trigeminy) == ["trigeminy"] and trigeminy.summary["ventricular"]["trigeminy_episodes"] == 1


def test_a_pause_is_counted_unless_an_artefact_lies_inside():
    samples, classes = beats([0.8, 0.8, 3.0, 0.8, 0.8], "NNNNNN")
    n = int(samples[-1] + FS)
    clean = holter_events(samples, classes, FS, n)
    assert kinds(clean) == ["pause"] and clean.summary["pauses"]["count"] == 1
    assert clean.summary["pauses"]["longest_s"] == pytest.approx(3.0, abs=0.01)
    rejected = np.array([samples[2] + int(1.5 * FS)])  # a detection the artefact filter rejected
    noisy = holter_events(samples, classes, FS, n, rejected=rejected)
    assert kinds(noisy) == ["pause (artefact)"]
    assert noisy.summary["pauses"]["count"] == 0 and noisy.summary["pauses"]["artefact_excluded"] == 1
    assert noisy.summary["pauses"]["longest_s"] is None
    spanned = holter_events(samples, classes, FS, n, spans=np.array([[samples[2] + 10, samples[3] + 10]]))
    assert kinds(spanned) == ["pause (artefact)"]
    assert kinds(holter_events(samples, classes, FS, n, rules=EventRules(pause_s=3.5))) == []


def test_artefact_intervals_mark_only_the_interval_holding_the_rejection():
    samples = np.array([100, 300, 500, 700])
    assert artefact_intervals(samples, np.array([300, 650])).tolist() == [False, False, True]
    assert artefact_intervals(samples, spans=np.array([[310, 320]])).tolist() == [False, True, False]


def test_heart_rate_minimum_maximum_with_their_minute_and_brady_tachy_time():
    rr = [1.2] * 50 + [0.6] * 100 + [0.75] * 80  # 50 bpm, then 100 bpm ... 80 bpm
    labels = "N" * (len(rr) + 1)
    samples, classes = beats(rr, labels, start_s=0.0)
    h = holter_events(samples, classes, FS, int(samples[-1] + 1))
    hr = h.summary["heart_rate"]
    assert hr["min_bpm"] == pytest.approx(50, abs=0.1) and hr["min_at_s"] == 0 and hr["min_time"] == "0:00:00"
    assert hr["max_bpm"] == pytest.approx(100, abs=1.5) and hr["max_at_s"] == 60.0
    assert hr["mean_bpm"] == pytest.approx(60 * len(rr) / sum(rr), abs=0.1)
    assert hr["bradycardia_s"] == pytest.approx(60, abs=1.5)  # minute 0: 50 bpm
    assert hr["tachycardia_s"] == 0  # 100 bpm is not faster than 100
    # a minute with under 30 s of RR takes no part in min / max
    short = holter_events(samples[:4], classes[:4], FS, int(samples[-1] + 1))
    assert short.summary["heart_rate"]["min_bpm"] is None


def test_per_hour_counts():
    samples = np.array([10, 11, 12, 3700, 3701, 3702]) * int(FS)
    classes = np.array([CLASS_INDEX[c] for c in "NVNVVN"])
    rows = holter_events(samples, classes, FS, int(7200 * FS)).summary["per_hour"]
    assert [(r["hour"], r["beats"], r["V"], r["V couplets"]) for r in rows] == [(0, 3, 1, 0), (1, 3, 2, 1)]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="strictly increasing"):
        holter_events(np.array([5, 5]), np.array([0, 0]), FS, 100)
    with pytest.raises(ValueError, match="pause_s"):
        EventRules(pause_s=0)


def test_analysis_events_follow_a_relabelled_cluster_and_go_into_the_json():
    a = _analysis()  # 60 N-shaped beats then 6 wide ones (5 called V, the last called N)
    assert a.events.summary["ventricular"]["beats"] == 5
    report = a.to_json()
    assert set(report) >= {"summary", "events", "beats"} and len(report["beats"]) == a.samples.size
    assert set(report["summary"]) == {
        "duration_s",
        "beats",
        "heart_rate",
        "ventricular",
        "supraventricular",
        "pauses",
        "per_hour",
        "rules",
    }
    assert [e["kind"] for e in report["events"]] == ["V run (slow)"]  # 5 V beats at 68 bpm
    wide = int(a.cluster[-1])
    a.relabel_cluster(wide, "N")
    assert a.events.summary["ventricular"]["beats"] == 0 and a.to_json()["events"] == []
    a.relabel_cluster(wide, "V")
    assert a.events.summary["ventricular"]["runs"] == 1 and a.events.events[0].beats == 6


def test_report_file_says_what_it_is(tmp_path):
    a = _analysis()
    a.model = "/somewhere/beats-default.safetensors"
    a.artefact_filter = {"model": "/x/beats-artefact.safetensors", "threshold": 0.998}
    a.rejected = np.array([50])
    assert "V calls overridden</th><td>off" in report_html(a)
    a.overridden = np.zeros(a.samples.size, dtype=bool)
    a.overridden[[3, 7]] = True
    path = write_report(a, tmp_path / "r.html")
    text = path.read_text()
    for expected in (
        "Holter report: r",
        "Not a diagnosis",
        "beats-default.safetensors",
        "beats-artefact.safetensors, rejects P(artefact) &gt; 0.998",
        "Detections rejected as artefact</th><td>1<",
        "0:01:00 (h:mm:ss)",
        "V calls overridden</th><td>2 V calls narrow and shaped like the dominant beat counted N<",
    ):
        assert expected in text, expected
    assert "<td>V run (slow)</td><td>5</td><td>68</td>" in report_html(a)
    rows = dict(summary_sections(a.events.summary)[1][1])
    assert rows["V beats"] == "5 (7.58 % of beats)"
    assert not list(tmp_path.glob("*.tmp*"))


def test_cli_writes_the_report(tmp_path, capsys):
    from ecgcore.cli import main
    from ecgcore.data.synthetic import synthetic_ecg
    from tests.beats.conftest import write_record

    ecg = synthetic_ecg(hr=75, fs=250, duration=70, leads=("II", "V1"), seed=8)
    signal = ecg.signal.copy()
    signal[:, int(30 * FS) : int(34 * FS)] = 0.0  # 4 s with no beat: a pause
    path = write_record(tmp_path, "clirep", signal, ecg.fs)
    out = tmp_path / "clirep.html"
    assert main(["beats", str(path), "--quiet", "--no-beats", "--no-intervals", "--report", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["summary"]["pauses"]["count"] == 1 and report["summary"]["pauses"]["longest_s"] > 4.0
    assert [e["kind"] for e in report["events"]] == ["pause"]
    text = out.read_text()
    assert "Holter report: clirep" in text and "Not a diagnosis" in text and "<td>pause</td>" in text
    assert main(["beats", str(path), "--quiet", "--no-beats", "--no-intervals", "--pause-s", "5"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["events"] == []
    assert main(["beats", str(path), "--quiet", "--report", str(tmp_path / "no" / "r.html")]) == 2
    assert "no folder" in capsys.readouterr().err
    # several records: FILE is a folder; a file in its place is refused before any analysis
    two = [str(path), str(path), "--quiet", "--no-beats", "--no-intervals", "--report"]
    assert main(["beats", *two, str(out)]) == 2
    err = capsys.readouterr()
    assert "a file is there" in err.err and err.out == ""
    # a folder that cannot be made (a file on its path): exit 2 and the path, no traceback
    assert main(["beats", *two, str(out / "reports")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and str(out) in err and "Traceback" not in err


def test_the_heart_rate_figure_marks_each_event_kind():
    from ecgcore import viz

    h = events_of([0.8, 0.8, 0.5, 0.5, 0.8, 3.0, 0.8, 0.5, 0.5, 0.8], "NNVVVNNVVVN")
    assert h.starts() == {"VT": [pytest.approx(2.6), pytest.approx(8.2)], "pause": [pytest.approx(4.4)]}
    fig = viz.hr_trend([60.0, 70.0], events=h.starts())
    marks = {t.name: list(t.x) for t in fig.data[1:]}
    assert marks == {
        "VT (2)": [pytest.approx(2.6 / 3600), pytest.approx(8.2 / 3600)],
        "pause (1)": [4.4 / 3600],
    }
    assert all(min(t.y) > 70 for t in fig.data[1:])  # above the trend


def test_each_threshold_is_strict_at_its_boundary():
    """VT needs > 100 bpm, a pause > 2 s, sustained > 30 s: exactly the threshold is not enough."""
    at_100 = events_of([0.8, 0.6, 0.6, 0.8], "NVVVN")  # 150 samples per RR: exactly 100 bpm
    assert kinds(at_100) == ["V run (slow)"]
    assert kinds(events_of([0.8, 0.596, 0.596, 0.8], "NVVVN")) == ["VT"]
    assert kinds(events_of([0.8, 2.0, 0.8], "NNNN")) == []  # 500 samples: exactly 2 s
    assert kinds(events_of([0.8, 2.0, 0.8], "NVVN")) == ["V couplet"]  # and no break between the V beats
    assert kinds(events_of([0.8, 2.004, 0.8], "NNNN")) == ["pause"]
    thirty = events_of([0.8] + [0.5] * 60 + [0.8], "N" + "V" * 61 + "N")  # first to last V: 30.0 s
    assert thirty.summary["ventricular"]["vt"] == 1 and thirty.summary["ventricular"]["vt_sustained"] == 0


def test_longest_and_fastest_run_are_told_apart():
    h = events_of([0.8] + [0.7] * 4 + [0.8, 0.8, 0.8, 0.4, 0.4, 0.8], "NVVVVVNNVVVN")
    v = h.summary["ventricular"]
    assert (v["longest_run"]["beats"], v["longest_run"]["rate_bpm"]) == (5, pytest.approx(60 / 0.7, abs=0.1))
    assert (v["fastest_run"]["beats"], v["fastest_run"]["rate_bpm"]) == (3, pytest.approx(150, abs=0.1))


def test_a_bigeminy_episode_runs_from_its_first_n_to_its_last_v():
    h = events_of([0.6, 1.0, 0.6, 1.0, 0.6, 1.0], "NVNVNVN")
    (episode,) = h.events
    assert episode.beats == 6 and episode.duration_s == pytest.approx(3.8)  # 0.6 + 1.0 + 0.6 + 1.0 + 0.6
    assert episode.rate_bpm == pytest.approx(60 * 5 / 3.8, abs=0.1)
    assert h.summary["ventricular"]["bigeminy_s"] == pytest.approx(3.8)


def test_excluded_span_ends_before_its_stop_sample():
    samples = np.array([100, 300, 500, 700])
    assert artefact_intervals(samples, spans=np.array([[300, 500]])).tolist() == [False, True, False]


def test_an_interval_counts_in_the_minute_it_ends_in():
    rates = minute_rates(np.array([0, 14_000, 16_000]), FS, 30_000)  # RR of 56 s, then 8 s ending at 64 s
    assert rates.covered_s.tolist() == pytest.approx([56.0, 8.0])
    assert rates.hr.tolist() == pytest.approx([60 / 56, 7.5])


def test_minute_eligibility_and_brady_tachy_are_strict_at_their_thresholds():
    half = np.arange(61) * 125  # 60 RR of 0.5 s: exactly 30 s of RR in minute 0
    h = holter_events(half, np.zeros(61, dtype=np.int64), FS, 15_000)
    assert h.summary["heart_rate"]["min_bpm"] == pytest.approx(120)
    assert h.summary["heart_rate"]["tachycardia_s"] == pytest.approx(30)
    one = np.arange(60) * 250  # 59 RR of 1 s in minute 0: exactly 60 bpm
    classes = np.zeros(60, dtype=np.int64)
    at_60 = holter_events(one, classes, FS, 15_000, rules=EventRules(brady_bpm=60, tachy_bpm=60))
    assert (at_60.summary["heart_rate"]["bradycardia_s"], at_60.summary["heart_rate"]["tachycardia_s"]) == (
        0,
        0,
    )
    slower = holter_events(one, classes, FS, 15_000, rules=EventRules(brady_bpm=61))
    assert slower.summary["heart_rate"]["bradycardia_s"] == pytest.approx(59)


def test_heart_rate_leaves_out_the_intervals_around_a_rejected_detection():
    samples, classes = beats([0.8] * 40 + [3.0] + [0.8] * 40, "N" * 82, start_s=0.0)
    rejected = np.array([samples[40] + int(1.5 * FS)])
    hr = holter_events(samples, classes, FS, int(samples[-1] + 1), rejected=rejected).summary["heart_rate"]
    assert hr["mean_bpm"] == pytest.approx(75) and hr["min_bpm"] == pytest.approx(75)
    assert holter_events(samples, classes, FS, int(samples[-1] + 1)).summary["heart_rate"]["mean_bpm"] < 74


def test_per_hour_rows_count_runs_pauses_and_the_hours_rate():
    times = [10, 11, 12, 3700, 3700.8, 3701.6, 3705, 3706, 3708]
    samples = np.round(np.array(times) * FS).astype(np.int64)
    classes = np.array([CLASS_INDEX[c] for c in "NVNSSSNNN"])
    rejected = np.array([2000, 3707]) * int(FS)  # across 12 -> 3700 s and 3706 -> 3708 s
    rows = holter_events(samples, classes, FS, int(7200 * FS), rejected=rejected).summary["per_hour"]
    zero = {"V couplets": 0, "V runs": 0}
    assert rows == [
        {"hour": 0, "beats": 3, "mean_hr_bpm": 60.0, "V": 1, "S": 0} | zero | {"S runs": 0, "pauses": 0},
        # hour 1: RR 0.8, 0.8, 3.4 (a pause), 1.0 -> 40 bpm; the S run (75 bpm) is slow
        {"hour": 1, "beats": 6, "mean_hr_bpm": 40.0, "V": 0, "S": 3} | zero | {"S runs": 1, "pauses": 1},
    ]


def test_report_escapes_record_names_and_model_paths():
    a = _analysis()
    a.record = "<script>alert(1)</script>"
    a.model = "/m/<img src=x onerror=alert(2)>.safetensors"
    a.channels = ["II<u>"]
    text = report_html(a)
    for raw in ("<script>", "<img", "<u>"):
        assert raw not in text, raw
    assert "Holter report: &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in text
    assert "&lt;img src=x onerror=alert(2)&gt;.safetensors" in text and "250 Hz, II&lt;u&gt;" in text
    assert text.index("Not a diagnosis") < text.index("<h2>Recording")  # the disclaimer comes first


def test_analysis_events_keep_a_long_rr_around_a_rejected_detection_out_of_the_pauses():
    a = _analysis()
    a.samples = a.samples + np.where(np.arange(a.samples.size) >= 30, int(3 * FS), 0)  # 3 s gap after beat 29
    a.n_samples += int(3 * FS)
    assert "pause" in [e.kind for e in a.events.events]
    a.rejected = np.array([a.samples[29] + int(1.5 * FS)])
    assert "pause" not in [e.kind for e in a.events.events]
    assert a.events.summary["pauses"]["artefact_excluded"] == 1
