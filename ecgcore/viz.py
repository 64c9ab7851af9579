"""Plotly figure builders for the dashboard and reports: pure functions, data in, figure out.

The ECG is drawn on standard ECG paper: 25 mm/s and 10 mm/mV, a 1 mm minor and a 5 mm major grid.
In plot units one minor square is 0.04 s by 0.1 mV; the y axis is locked to the x axis at
10 mm/mV / 25 mm/s = 0.4 so the squares stay square at any figure width. Every lead of a figure
is one path (``NaN`` separates the pieces), which keeps a 12-lead 500 Hz record fast to draw.
Nothing here imports streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ecgcore.io import Envelope
from ecgcore.vocab import SALIENCY_COLOURMAP, SALIENCY_KEY, SUPERCLASSES, TARGET_KEYS, TARGETS_BY_KEY

#: Paper speed and gain of the standard ECG printout.
MM_PER_S = 25.0
MM_PER_MV = 10.0
#: The standard 3x4 layout: one column per 2.5 s, leads read down each column.
LAYOUT_3X4: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
#: Vertical distance between the baselines of two rows (mV): 30 mm of paper.
ROW_PITCH_MV = 3.0
#: Fiducial name -> (legend label, marker symbol, colour) for the measured points.
FIDUCIAL_STYLE: dict[str, tuple[str, str, str]] = {
    "p_on": ("P onset", "triangle-right", "#2ca02c"),
    "qrs_on": ("QRS onset", "line-ns-open", "#1f77b4"),
    "qrs_off": ("QRS offset", "line-ns-open", "#9467bd"),
    "t_off": ("T offset", "triangle-left", "#d62728"),
}
#: The global boundaries drawn through every representative beat: name -> (legend label, colour).
BOUNDARY_STYLE: dict[str, tuple[str, str]] = {
    "p_on": ("P onset", FIDUCIAL_STYLE["p_on"][2]),
    "p_off": ("P offset", "#98df8a"),
    **{k: (FIDUCIAL_STYLE[k][0], FIDUCIAL_STYLE[k][2]) for k in ("qrs_on", "qrs_off", "t_off")},
}
#: Paper between two representative beats (s).
BEAT_GAP_S = 0.1
#: Plot width the figure height is computed for (the page stretches it; the aspect stays locked).
PLOT_WIDTH_PX = 850
#: The ECG strip's width: the page's full width in a wide layout (about 4 px per mm of paper).
ECG_WIDTH_PX = 1100
#: The 1 mV calibration pulse drawn left of every row: (start, rise, fall, end) in s before the row's 0 s.
CALIBRATION_S = (-0.30, -0.26, -0.06, -0.02)
#: A record longer than this (s) is drawn as an overview of the whole plus a window on ECG paper.
LONG_RECORD_S = 60.0
#: Rate of the hover / click points laid over each lead (Hz): 10 ms steps, few enough to stay fast in SVG.
READOUT_HZ = 100.0
_MINOR = "rgba(240, 128, 128, 0.25)"
_MAJOR = "rgba(220, 60, 60, 0.55)"
_PAPER = "#fff8f6"
_INK = "#333333"


def _paper_axes(
    fig: go.Figure,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width_px: int = PLOT_WIDTH_PX,
) -> None:
    """Turn the axes into ECG paper: 0.04 s / 0.1 mV minor and 0.2 s / 0.5 mV major grid, square boxes.

    The height is computed for a plot ``width_px`` wide; the legend sits top left, clear of the plot's
    toolbar (top right), and the paper keeps its colour whatever the app's theme.
    """
    first = max(0.0, np.ceil(x_range[0] / 0.2 - 1e-9) * 0.2)
    major = np.round(np.arange(first, x_range[1] + 1e-9, 0.2), 6)  # a label on whole seconds only
    long = x_range[1] >= 60
    fig.update_xaxes(
        range=list(x_range),
        dtick=0.2,
        showgrid=True,
        gridcolor=_MAJOR,
        gridwidth=1,
        minor=dict(dtick=0.04, showgrid=True, gridcolor=_MINOR, gridwidth=0.5),
        zeroline=False,
        ticks="",
        title_text=f"time ({'h:mm:ss' if long else 's'}) — 25 mm/s",
        constrain="domain",
        tickvals=major,
        ticktext=[(clock(t) if long else f"{t:g}") if abs(t - round(t)) < 1e-6 else "" for t in major],
        color=_INK,
    )
    fig.update_yaxes(
        range=list(y_range),
        dtick=0.5,
        showgrid=True,
        gridcolor=_MAJOR,
        gridwidth=1,
        minor=dict(dtick=0.1, showgrid=True, gridcolor=_MINOR, gridwidth=0.5),
        zeroline=False,
        showticklabels=False,
        scaleanchor="x",
        scaleratio=MM_PER_MV / MM_PER_S,
        constrain="domain",
        constraintoward="top",  # on a narrower page the spare height goes below the paper, not above
    )
    fig.update_layout(
        plot_bgcolor=_PAPER,
        paper_bgcolor="white",
        font=dict(color=_INK),
        margin=dict(l=10, r=10, t=70, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, xanchor="left", font=dict(color=_INK)),
        hovermode="closest",
        hoverlabel=dict(bgcolor="white", font=dict(color=_INK)),
        height=int(
            120 + width_px * (MM_PER_MV / MM_PER_S) * (y_range[1] - y_range[0]) / (x_range[1] - x_range[0])
        ),
    )


def clock(seconds: float, like: float = 0.0) -> str:
    """Seconds as a clock reading: ``1:02:03`` (from an hour), ``2:03`` (from a minute), else ``12``;
    ``like``: format as a reading of that size would be (``0:00:10`` in a day-long record)."""
    whole = int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    size = max(whole, like)
    return f"{h}:{m:02d}:{sec:02d}" if size >= 3600 else f"{m}:{sec:02d}" if size >= 60 else f"{sec}"


def _segments(
    signal: np.ndarray, fs: float, leads: Sequence[str], rows: Sequence[Sequence[tuple[str, float, float]]]
) -> tuple[list[tuple[str, int, int, float, float]], float]:
    """Where each drawn piece goes: ``(lead, first sample, stop sample, x of its start, baseline)``."""
    index = {name: i for i, name in enumerate(leads)}
    pieces = []
    for r, row in enumerate(rows):
        baseline = -r * ROW_PITCH_MV
        for lead, t0, t1 in row:
            if lead in index:
                pieces.append(
                    (lead, int(round(t0 * fs)), min(int(round(t1 * fs)), signal.shape[1]), t0, baseline)
                )
    return pieces, -(len(rows) - 1) * ROW_PITCH_MV


def paper_rows(
    leads: Sequence[str],
    duration: float,
    layout: str = "3x4",
    rhythm_lead: str = "II",
    shown: Sequence[str] | None = None,
) -> list[list[tuple[str, float, float]]]:
    """The rows of a printout: each a list of ``(lead, start s, stop s)``.

    ``"3x4"``: the usual 12-lead layout (four 2.5 s columns) plus a full-length rhythm strip of
    ``rhythm_lead``; ``"rows"``: one lead per row over the whole record. ``shown`` limits the leads.
    """
    visible = [lead for lead in leads if shown is None or lead in shown]
    if layout == "rows":
        return [[(lead, 0.0, duration)] for lead in visible]
    if layout != "3x4":
        raise ValueError(f"unknown ECG layout {layout!r}; expected '3x4' or 'rows'")
    width = min(duration, 10.0) / 4
    rows = [
        [(lead, c * width, (c + 1) * width) for c, lead in enumerate(names) if lead in visible]
        for names in LAYOUT_3X4
    ]
    rows = [row for row in rows if row]
    if rhythm_lead in visible:
        rows.append([(rhythm_lead, 0.0, duration)])
    return rows


@dataclass(frozen=True)
class CaliperReading:
    """Two points on the strip as an ECG reader's calipers give them.

    ``dt_ms`` is the time between them, ``bpm`` the rate that interval would be as an RR interval,
    ``dmv`` the amplitude of the second minus the first (mV, each relative to its own lead's baseline).
    """

    dt_ms: float
    bpm: float | None
    dmv: float

    def text(self) -> str:
        """``Δt 800 ms (75 bpm) · Δ 0.50 mV``."""
        rate = f" ({self.bpm:.0f} bpm)" if self.bpm is not None else ""
        return f"Δt {self.dt_ms:.0f} ms{rate} · Δ {self.dmv:+.2f} mV"


def caliper(a: tuple[float, float], b: tuple[float, float]) -> CaliperReading:
    """The calipers between two points ``(time s, amplitude mV)`` (order does not matter for Δt)."""
    dt_ms = abs(b[0] - a[0]) * 1000.0
    return CaliperReading(dt_ms=dt_ms, bpm=60000.0 / dt_ms if dt_ms > 0 else None, dmv=b[1] - a[1])


def ecg_paper(
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    *,
    layout: str = "3x4",
    rhythm_lead: str = "II",
    shown: Sequence[str] | None = None,
    fiducials: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    calipers: Sequence[tuple[float, float]] = (),
    width_px: int = ECG_WIDTH_PX,
    start_s: float = 0.0,
) -> go.Figure:
    """A record on standard ECG paper, as a viewer: calibration pulses, hover readout, calipers.

    Every row starts with the 1 mV, 200 ms calibration pulse (left of 0 s). Each drawn lead is a
    line trace named after the lead, overlaid by invisible points every 10 ms (:data:`READOUT_HZ`)
    whose hover reads the time in the record and the amplitude in mV (``customdata``): plotly
    selects points, not lines, so a click on the strip selects one of them. Lead labels are pinned to the plot's
    left edge in the one-lead-per-row layout (they stay when zoomed); in 3x4 they mark each column.

    Parameters
    ----------
    signal
        ``[leads, samples]`` in millivolts.
    fs
        Sampling rate (Hz).
    leads
        Lead names, one per row of ``signal``.
    layout
        ``"3x4"`` (plus a rhythm strip of ``rhythm_lead``) or ``"rows"`` (one lead per row).
    shown
        Leads to draw (default all).
    fiducials
        Measured points per beat as sample indices (``p_on``, ``qrs_on``, ``qrs_off``, ``t_off``;
        negative or NaN = missing), marked on every drawn lead at those times.
    title
        Figure title.
    calipers
        Up to two points ``(time s, y in plot units)`` marked with vertical lines; with two, the
        :func:`caliper` reading is written between them (the amplitude from ``signal`` at those times
        is the caller's: pass plot ``y`` here only to place the marks).
    width_px
        Plot width the height is computed for.
    start_s
        Where ``signal`` starts in its record (a window of a long record): the time axis, the hover
        readout and the calipers read the record's time (``h:mm:ss`` labels from a minute on).
    """
    signal = np.asarray(signal, dtype=np.float64)
    duration = signal.shape[1] / fs
    rows = paper_rows(leads, duration, layout, rhythm_lead, shown)
    if not rows:
        raise ValueError("no lead to draw: select at least one lead")
    pieces, y_bottom = _segments(signal, fs, leads, rows)
    pieces = [(lead, s0, s1, x0 + start_s, baseline) for lead, s0, s1, x0, baseline in pieces]
    index = {name: i for i, name in enumerate(leads)}
    fig = go.Figure()
    c0, c1, c2, c3 = (start_s + c for c in CALIBRATION_S)
    cal_x, cal_y = [], []
    for r in range(len(rows)):
        base = -r * ROW_PITCH_MV
        cal_x += [c0, c1, c1, c2, c2, c3, np.nan]
        cal_y += [base, base, base + 1.0, base + 1.0, base, base, np.nan]
    fig.add_trace(
        go.Scatter(
            x=cal_x,
            y=cal_y,
            mode="lines",
            name="1 mV calibration",
            line=dict(color="black", width=1.5),
            hovertemplate="calibration pulse: 1 mV, 200 ms<extra></extra>",
            showlegend=False,
        )
    )
    step = max(1, int(round(fs / READOUT_HZ)))
    for lead, s0, s1, x0, baseline in pieces:
        seg = signal[index[lead], s0:s1]
        t = x0 + np.arange(len(seg)) / fs
        fig.add_trace(
            go.Scatter(
                x=t,
                y=seg + baseline,
                mode="lines",
                name=lead,
                legendgroup=lead,
                line=dict(color="black", width=1),
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(  # invisible points every 10 ms: the hover readout and what a click selects
            go.Scatter(
                x=t[::step],
                y=seg[::step] + baseline,
                customdata=np.round(seg[::step], 4),
                mode="markers",
                name=lead,
                legendgroup=lead,
                marker=dict(size=8, opacity=0, color="black"),
                selected=dict(marker=dict(opacity=0)),
                unselected=dict(marker=dict(opacity=0)),
                hovertemplate=f"<b>{lead}</b> %{{x:.3f}} s · %{{customdata:.2f}} mV<extra></extra>",
                showlegend=False,
            )
        )
        pinned = layout == "rows"
        fig.add_annotation(
            x=0.005 if pinned else x0 + 0.05,
            xref="paper" if pinned else "x",
            y=baseline + 1.1,
            text=f"<b>{lead}</b>",
            showarrow=False,
            xanchor="left",
            font=dict(size=12, color=_INK),
        )
    for name, samples in (fiducials or {}).items():
        if name not in FIDUCIAL_STYLE:
            continue
        label, symbol, colour = FIDUCIAL_STYLE[name]
        samples = np.asarray(samples, dtype=np.float64).ravel()
        samples = samples[np.isfinite(samples) & (samples >= 0)].astype(int)
        fx, fy = [], []
        for lead, s0, s1, x0, baseline in pieces:
            inside = samples[(samples >= s0) & (samples < s1)]
            fx.extend(x0 + (inside - s0) / fs)
            fy.extend(signal[index[lead], inside] + baseline)
        fig.add_trace(
            go.Scatter(
                x=fx,
                y=fy,
                mode="markers",
                name=label,
                marker=dict(symbol=symbol, size=6, color=colour, line=dict(width=1.5, color=colour)),
                hovertemplate=f"{label} %{{x:.3f}} s<extra></extra>",
            )
        )
    for _, _, _, x0, baseline in pieces:  # the printout's short marks where a column starts
        if x0 > start_s:
            fig.add_shape(
                type="line",
                x0=x0,
                x1=x0,
                y0=baseline - 0.5,
                y1=baseline + 0.5,
                line=dict(color="black", width=1.5),
            )
    x_range = (c0 - 0.02, max(x0 + (s1 - s0) / fs for _, s0, s1, x0, _ in pieces))
    y_range = (y_bottom - 1.5, 1.5)
    _draw_calipers(fig, calipers, y_range)
    _paper_axes(fig, x_range, y_range, width_px)
    fig.update_layout(title=dict(text=title, x=0, y=0.99, yanchor="top", font=dict(size=14)), dragmode="zoom")
    return fig


#: Clock steps the overview's time axis may use (s): the first giving at most 12 labels is taken.
_OVERVIEW_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
#: The window is marked at least this share of the overview wide, so a 10 s window of a day shows.
_WINDOW_MIN_SHARE = 0.004


def record_overview(
    env: Envelope,
    window: tuple[float, float] | None = None,
    *,
    title: str = "",
    width_px: int = ECG_WIDTH_PX,
) -> go.Figure:
    """A whole (long) record at a glance: each lead's lowest-to-highest band per bin, the window shown.

    ``env`` is :func:`ecgcore.io.envelope`'s fixed-size summary (so a 24-hour record draws as fast as
    a minute's); the time axis reads ``h:mm:ss`` from the record's start. Each bin also carries an
    invisible point at its start (``customdata`` = its start in seconds): a click on the overview
    selects one, which the page takes as "show the window here". ``window`` ``(start s, stop s)`` is
    shaded in blue.
    """
    n = len(env.leads)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=env.leads)
    starts = env.starts_s
    for i, lead in enumerate(env.leads, start=1):
        low, high = env.low[i - 1].astype(np.float64), env.high[i - 1].astype(np.float64)
        for y, fill in ((high, None), (low, "tonexty")):  # the band: its top, then its bottom filled up to it
            fig.add_trace(
                go.Scatter(
                    x=starts,
                    y=y,
                    mode="lines",
                    line=dict(color=_INK, width=0.6),
                    fill=fill,
                    fillcolor="rgba(51, 51, 51, 0.55)" if fill else None,
                    hoverinfo="skip",
                    showlegend=False,
                    name=lead,
                ),
                row=i,
                col=1,
            )
        fig.add_trace(  # the click targets: one invisible point per bin, on the band's middle
            go.Scatter(
                x=starts,
                y=(low + high) / 2,
                customdata=starts,
                mode="markers",
                name=f"{lead} overview",
                marker=dict(size=10, opacity=0),
                selected=dict(marker=dict(opacity=0)),
                unselected=dict(marker=dict(opacity=0)),
                showlegend=False,
                text=[clock(t) for t in starts],
                hovertemplate=f"<b>{lead}</b> %{{text}} · %{{y:.2f}} mV (middle of the band)<extra></extra>",
            ),
            row=i,
            col=1,
        )
        lo, hi = np.nanpercentile(low, 0.5), np.nanpercentile(high, 99.5)  # a lone artefact keeps its scale
        pad = max(0.2, 0.1 * (hi - lo))
        fig.update_yaxes(range=[lo - pad, hi + pad], row=i, col=1, title_text="mV")
    step = next((s for s in _OVERVIEW_STEPS if env.duration / s <= 12), _OVERVIEW_STEPS[-1])
    ticks = np.arange(0.0, env.duration + 1e-9, step)
    fig.update_xaxes(
        range=[0.0, env.duration],
        tickvals=ticks,
        ticktext=[clock(t) for t in ticks],
        showgrid=True,
        gridcolor=_MAJOR,
        color=_INK,
    )
    fig.update_xaxes(title_text="time from the record's start (h:mm:ss)", row=n, col=1)
    fig.update_yaxes(showgrid=True, gridcolor=_MINOR, zeroline=False, color=_INK)
    if window is not None:
        x0, x1 = window
        x1 = max(x1, x0 + _WINDOW_MIN_SHARE * env.duration)
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#0057b8", opacity=0.3, line_width=0, layer="above")
        fig.add_vline(x=x0, line=dict(color=_CALIPER, width=1.5))
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=14)),
        plot_bgcolor=_PAPER,
        paper_bgcolor="white",
        font=dict(color=_INK),
        height=90 + 130 * n,
        margin=dict(l=10, r=10, t=60, b=40),
        hovermode="closest",
        dragmode="zoom",
        clickmode="event+select",
    )
    return fig


_CALIPER = "#0057b8"


def _draw_calipers(
    fig: go.Figure, points: Sequence[tuple[float, float]], y_range: tuple[float, float]
) -> None:
    """Vertical caliper lines at up to two clicked points, and a bracket between them."""
    for t, y in points[:2]:
        fig.add_shape(
            type="line",
            x0=t,
            x1=t,
            y0=y_range[0],
            y1=y_range[1],
            line=dict(color=_CALIPER, width=1, dash="dot"),
        )
        fig.add_trace(
            go.Scatter(
                x=[t],
                y=[y],
                mode="markers",
                name="caliper",
                showlegend=False,
                hoverinfo="skip",
                marker=dict(symbol="x-thin", size=12, line=dict(width=2, color=_CALIPER)),
            )
        )
    if len(points) >= 2:
        (ta, ya), (tb, yb) = points[0], points[1]
        top = max(ya, yb) + 0.4
        fig.add_shape(type="line", x0=ta, x1=tb, y0=top, y1=top, line=dict(color=_CALIPER, width=2))
        fig.add_annotation(
            x=(ta + tb) / 2,
            y=top,
            text=f"Δt {abs(tb - ta) * 1000:.0f} ms",
            showarrow=False,
            yanchor="bottom",
            font=dict(size=12, color=_CALIPER),
            bgcolor="rgba(255,255,255,0.8)",
        )


def representative_beats(
    median: np.ndarray,
    fs: float,
    leads: Sequence[str],
    fiducials: Mapping[str, float],
    *,
    title: str = "",
) -> go.Figure:
    """Every lead's representative (median) beat on ECG paper, the global boundaries drawn through all.

    This is the view the intervals come from: one onset / offset for all leads, set where enough
    leads agree, so a lead whose wave seems to start later or end earlier is expected.

    Parameters
    ----------
    median
        ``[leads, samples]`` in millivolts, one beat per lead.
    fs
        Its sampling rate (Hz).
    leads
        Lead names, one per row of ``median``. Standard leads sit where the 3x4 printout puts them;
        a record with any other lead (e.g. the QT Database's ``MLII``) is drawn in rows of four.
    fiducials
        Seconds from the beat's start: ``p_on``, ``p_off``, ``qrs_on``, ``qrs_off``, ``t_off``
        (others, and missing or NaN ones, are not drawn).
    title
        Figure title.
    """
    median = np.asarray(median, dtype=np.float64)
    if median.ndim != 2 or median.shape[0] != len(leads) or median.shape[1] == 0:
        raise ValueError(f"representative beats of shape {median.shape} do not match {len(leads)} lead(s)")
    width = median.shape[1] / fs
    standard = {lead: (r, c) for r, row in enumerate(LAYOUT_3X4) for c, lead in enumerate(row)}
    if set(leads) <= set(standard):
        place = {lead: standard[lead] for lead in leads}
    else:
        place = {lead: (i // 4, i % 4) for i, lead in enumerate(leads)}
    rows_used = sorted({r for r, _ in place.values()})
    panels = {
        lead: (c * (width + BEAT_GAP_S), -rows_used.index(r) * ROW_PITCH_MV) for lead, (r, c) in place.items()
    }
    t = np.arange(median.shape[1]) / fs
    xs, ys = [], []
    fig = go.Figure()
    for i, lead in enumerate(leads):
        x0, baseline = panels[lead]
        xs += [x0 + t, [np.nan]]
        ys += [median[i] + baseline, [np.nan]]
        fig.add_annotation(
            x=x0 + 0.02,
            y=baseline + 1.1,
            text=f"<b>{lead}</b>",
            showarrow=False,
            xanchor="left",
            font=dict(size=12, color="#333"),
        )
    fig.add_trace(
        go.Scatter(
            x=np.concatenate(xs),
            y=np.concatenate(ys),
            mode="lines",
            name="median beat",
            line=dict(color="black", width=1.2),
            hoverinfo="skip",
            showlegend=False,
        )
    )
    for name, (label, colour) in BOUNDARY_STYLE.items():
        at = fiducials.get(name)
        if at is None or not np.isfinite(at):
            continue
        lx = [v for x0, _ in panels.values() for v in (x0 + at, x0 + at, np.nan)]
        ly = [v for _, baseline in panels.values() for v in (baseline - 1.0, baseline + 1.0, np.nan)]
        fig.add_trace(
            go.Scatter(
                x=lx,
                y=ly,
                mode="lines",
                name=label,
                hoverinfo="name",
                line=dict(color=colour, width=1.5, dash="dot"),
            )
        )
    n_cols = max(c for _, c in place.values()) + 1
    _paper_axes(
        fig,
        (0.0, n_cols * (width + BEAT_GAP_S) - BEAT_GAP_S),
        (-(len(rows_used) - 1) * ROW_PITCH_MV - 1.5, 1.5),
    )
    fig.update_xaxes(showticklabels=False, title_text="one representative beat per lead — 25 mm/s, 10 mm/mV")
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)))
    return fig


def saliency_paper(
    signal: np.ndarray, fs: float, leads: Sequence[str], attribution: np.ndarray, *, title: str = ""
) -> go.Figure:
    """One lead per row on ECG paper with the attribution as a heatmap behind each lead.

    Parameters
    ----------
    signal, attribution
        ``[leads, samples]``; the attribution's magnitude is shown on one scale for all leads (so
        leads compare with each other), saturating at its 99th percentile so that a few extreme
        samples do not wash out the rest.
    """
    signal = np.asarray(signal, dtype=np.float64)
    attribution = np.abs(np.asarray(attribution, dtype=np.float64))
    if attribution.shape != signal.shape:
        raise ValueError(f"attribution of shape {attribution.shape} does not match the signal {signal.shape}")
    peak = np.percentile(attribution, 99) or attribution.max()  # sparse maps: the 99th percentile may be 0
    scaled = np.clip(attribution / peak, 0, 1) if peak > 0 else attribution
    step = max(1, int(round(fs * 0.02)))  # 20 ms cells: enough detail, small figure
    n = scaled.shape[1] // step * step
    cells = scaled[:, :n].reshape(len(leads), -1, step).mean(axis=2)
    t_cells = (np.arange(cells.shape[1]) + 0.5) * step / fs
    fig = ecg_paper(signal, fs, leads, layout="rows", title=title)
    baselines = -np.arange(len(leads)) * ROW_PITCH_MV
    fig.add_trace(
        go.Heatmap(
            z=cells[::-1],
            x=t_cells,
            y=baselines[::-1],
            colorscale=SALIENCY_COLOURMAP,
            zmin=0,
            zmax=1,
            opacity=0.55,
            showscale=True,
            colorbar=dict(title=dict(text=SALIENCY_KEY, side="right"), len=0.5),
            hovertemplate="%{x:.2f} s · attribution %{z:.2f} of the largest<extra></extra>",
        )
    )
    fig.data = (fig.data[-1],) + fig.data[:-1]  # heatmap under the trace
    return fig


def lead_importance(importance: Mapping[str, float], title: str = "Importance per lead") -> go.Figure:
    """Bar chart of per-lead importance (shares summing to one)."""
    fig = go.Figure(go.Bar(x=list(importance), y=list(importance.values()), marker_color="#c0392b"))
    fig.update_layout(title=title, yaxis_title="share of attribution", height=300, margin=dict(t=40, b=40))
    return fig


# --- dataset overview ------------------------------------------------------------------------
def class_distribution(index: pd.DataFrame) -> go.Figure:
    """Records per superclass (a record may have several) and single-label counts."""
    multi = [int(index[c].sum()) for c in SUPERCLASSES]
    single = [int((index["superclass"] == c).sum()) for c in SUPERCLASSES]
    fig = go.Figure(
        [
            go.Bar(name="has the class", x=list(SUPERCLASSES), y=multi),
            go.Bar(name="only this class", x=list(SUPERCLASSES), y=single),
        ]
    )
    fig.update_layout(title="Diagnostic superclasses", barmode="group", yaxis_title="records", height=320)
    return fig


def fold_distribution(index: pd.DataFrame) -> go.Figure:
    """Records per fold, coloured by the split the fold belongs to."""
    counts = index.groupby(["fold", "split"]).size().reset_index(name="records")
    fig = go.Figure(
        [
            go.Bar(name=split, x=part["fold"], y=part["records"])
            for split, part in counts.groupby("split", sort=False)
        ]
    )
    fig.update_layout(
        title="Folds (1-8 train, 9 validation, 10 test)",
        xaxis=dict(dtick=1, title="fold"),
        yaxis_title="records",
        barmode="stack",
        height=320,
    )
    return fig


def interval_histograms(index: pd.DataFrame, keys: Sequence[str] = TARGET_KEYS) -> go.Figure:
    """One histogram per interval column of the index (NaNs left out; the count is in the title)."""
    fig = make_subplots(
        rows=1,
        cols=len(keys),
        subplot_titles=[
            f"{TARGETS_BY_KEY[k].name} ({TARGETS_BY_KEY[k].unit}), n={int(index[k].notna().sum())}"
            for k in keys
        ],
    )
    for j, key in enumerate(keys, start=1):
        fig.add_trace(
            go.Histogram(x=index[key].dropna(), nbinsx=30, marker_color="#2c7fb8", showlegend=False),
            row=1,
            col=j,
        )
    fig.update_layout(height=300, margin=dict(t=50, b=30))
    return fig


# --- runs ------------------------------------------------------------------------------------
def learning_curves(
    epochs: Mapping[str, pd.DataFrame],
    metric: str | None = None,
    *,
    steps: Mapping[str, pd.DataFrame] | None = None,
    steps_per_epoch: Mapping[str, float] | None = None,
    metric_label: str | None = None,
) -> go.Figure:
    """Training and validation loss per epoch (left) and a validation metric (right), one colour per run.

    Parameters
    ----------
    epochs
        Run label -> :meth:`ecgcore.runs.store.RunStore.epochs` frame.
    metric
        Column of the epochs frames to plot on the right (e.g. ``"mae"``, ``"auc"``); none: loss only.
    steps, steps_per_epoch
        Run label -> :meth:`ecgcore.runs.store.RunStore.steps` frame (the streamed per-step training
        loss) and that run's optimiser steps per epoch: drawn as a thin line at fractional epochs,
        so the curve moves during an epoch.
    metric_label
        How the metric's axis is titled (default ``validation <metric>``).
    """
    cols = 2 if metric else 1
    fig = make_subplots(
        rows=1,
        cols=cols,
        subplot_titles=["loss"] + ([metric_label or f"validation {metric}"] if metric else []),
    )
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    labels = list(dict.fromkeys([*epochs, *(steps or {})]))
    for i, label in enumerate(labels):
        colour = palette[i % len(palette)]
        per_step = (steps or {}).get(label)
        spe = (steps_per_epoch or {}).get(label)
        if per_step is not None and len(per_step) and spe:
            fig.add_trace(
                go.Scatter(
                    x=per_step["step"] / spe,
                    y=per_step["train_loss"],
                    name=f"{label} train (per step)",
                    mode="lines",
                    line=dict(color=colour, width=1),
                    opacity=0.5,
                ),
                row=1,
                col=1,
            )
        frame = epochs.get(label)
        if frame is None or not len(frame):
            continue
        x = frame["epoch"] + 1
        fig.add_trace(
            go.Scatter(
                x=x,
                y=frame["train_loss"],
                name=f"{label} train",
                mode="lines+markers",
                line=dict(color=colour, dash="dot"),
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x, y=frame["val_loss"], name=f"{label} val", mode="lines+markers", line=dict(color=colour)
            ),
            row=1,
            col=1,
        )
        if metric and metric in frame:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=frame[metric],
                    name=f"{label} {metric}",
                    mode="lines+markers",
                    line=dict(color=colour),
                    showlegend=False,
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(height=340, margin=dict(t=50, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def roc_curves(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> go.Figure:
    """One-vs-rest ROC curve per class (classes absent or always present in ``y_true`` are skipped).

    Parameters
    ----------
    y_true
        Class indices ``[N]`` or a 0/1 matrix ``[N, C]``.
    probs
        ``[N, C]`` probabilities.
    """
    from sklearn.metrics import auc, roc_curve

    y_true = np.asarray(y_true)
    onehot = np.eye(len(classes), dtype=int)[y_true.astype(int)] if y_true.ndim == 1 else y_true.astype(int)
    fig = go.Figure()
    for j, name in enumerate(classes):
        if 0 < onehot[:, j].sum() < len(onehot):
            fpr, tpr, _ = roc_curve(onehot[:, j], probs[:, j])
            fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc(fpr, tpr):.3f})"))
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="grey"), name="chance")
    )
    fig.update_layout(
        title="ROC per class",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        height=380,
        xaxis=dict(range=[0, 1]),
        yaxis=dict(range=[0, 1.02]),
    )
    return fig


def confusion_matrix(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "Confusion matrix"
) -> go.Figure:
    """Heatmap of a ``[C, C]`` confusion matrix (rows = truth, columns = prediction) with counts."""
    z = np.asarray(matrix)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(classes),
            y=list(classes),
            colorscale="Blues",
            text=z,
            texttemplate="%{text}",
            showscale=False,
        )
    )
    fig.update_layout(
        title=title, xaxis_title="predicted", yaxis=dict(title="true", autorange="reversed"), height=380
    )
    return fig


def predicted_vs_measured(measured: np.ndarray, predicted: np.ndarray, key: str) -> go.Figure:
    """Scatter of predicted against reference values of one interval, with the identity line."""
    target = TARGETS_BY_KEY[key]
    lo = float(np.nanmin([np.nanmin(measured), np.nanmin(predicted)]))
    hi = float(np.nanmax([np.nanmax(measured), np.nanmax(predicted)]))
    fig = go.Figure(
        [
            go.Scatter(
                x=measured, y=predicted, mode="markers", name="records", marker=dict(size=6, opacity=0.7)
            ),
            go.Scatter(
                x=[lo, hi], y=[lo, hi], mode="lines", name="identity", line=dict(dash="dash", color="grey")
            ),
        ]
    )
    fig.update_layout(
        title=f"{target.name}: predicted vs reference",
        xaxis_title=f"reference ({target.unit})",
        yaxis_title=f"predicted ({target.unit})",
        height=360,
        showlegend=False,
    )
    return fig


def bland_altman(measured: np.ndarray, predicted: np.ndarray, key: str) -> go.Figure:
    """Bland-Altman plot: difference (predicted - reference) against the mean, bias and 95% limits."""
    target = TARGETS_BY_KEY[key]
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    diff = predicted - measured
    mean = (predicted + measured) / 2
    bias = float(np.mean(diff))
    sd = float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0
    fig = go.Figure(
        go.Scatter(x=mean, y=diff, mode="markers", marker=dict(size=6, opacity=0.7), showlegend=False)
    )
    lines = (
        (bias, f"bias {bias:.1f}", "solid"),
        (bias + 1.96 * sd, f"+1.96 SD {bias + 1.96 * sd:.1f}", "dash"),
        (bias - 1.96 * sd, f"-1.96 SD {bias - 1.96 * sd:.1f}", "dash"),
    )
    for value, label, dash in lines:
        fig.add_hline(
            y=value, line=dict(dash=dash, color="#c0392b"), annotation_text=label, annotation_position="right"
        )
    fig.update_layout(
        title=f"{target.name}: Bland-Altman",
        xaxis_title=f"mean of both ({target.unit})",
        yaxis_title=f"predicted - reference ({target.unit})",
        height=360,
    )
    return fig


def probabilities(probs: Mapping[str, float], title: str = "Class probabilities") -> go.Figure:
    """Horizontal bar chart of class probabilities."""
    names = list(probs)
    fig = go.Figure(
        go.Bar(
            x=[probs[n] for n in names],
            y=names,
            orientation="h",
            marker_color="#2c7fb8",
            text=[f"{probs[n]:.2f}" for n in names],
            textposition="auto",
        )
    )
    fig.update_layout(
        title=title,
        xaxis=dict(range=[0, 1], title="probability"),
        height=80 + 40 * len(names),
        yaxis=dict(autorange="reversed"),
        margin=dict(t=40, b=40),
    )
    return fig


def reliability_diagram(
    before: Mapping, after: Mapping | None = None, title: str = "Reliability"
) -> go.Figure:
    """Observed frequency against mean predicted probability per bin, before (and after) calibration.

    Parameters
    ----------
    before, after
        :func:`ecgcore.explain.calibration.reliability` results (``confidence``, ``frequency``, ``ece``).
    """
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line=dict(dash="dash", color="grey"),
            name="perfectly calibrated",
        )
    )
    for label, data, colour in (("before", before, "#c0392b"), ("after", after, "#2c7fb8")):
        if data is not None:
            fig.add_trace(
                go.Scatter(
                    x=data["confidence"],
                    y=data["frequency"],
                    mode="lines+markers",
                    name=f"{label} (ECE {data['ece']:.3f})",
                    line=dict(color=colour),
                )
            )
    fig.update_layout(
        title=title,
        xaxis=dict(title="mean predicted probability", range=[0, 1]),
        yaxis=dict(title="observed frequency", range=[0, 1]),
        height=360,
    )
    return fig


# --- Holter (beat-level analysis of long records) ---------------------------------------------------------

#: EC57 beat class -> colour in every Holter figure.
BEAT_CLASS_COLOURS: dict[str, str] = {
    "N": "#2b6cb0",
    "S": "#dd6b20",
    "V": "#c53030",
    "F": "#6b46c1",
    "Q": "#718096",
}


def hr_trend(
    hr_per_minute: Sequence[float | None],
    title: str = "Heart rate per minute",
    events: Mapping[str, Sequence[float]] | None = None,
) -> go.Figure:
    """Heart rate (bpm) per minute of a long record; minutes without beats leave a gap. ``events``
    (kind -> start times in s, e.g. :meth:`ecgcore.beats.events.HolterEvents.starts`) are marked in a row
    above the trend, one marker per event, so a reader sees when runs and pauses happened."""
    hr = np.array([np.nan if v is None else v for v in hr_per_minute], dtype=np.float64)
    fig = go.Figure(
        go.Scatter(x=np.arange(hr.size) / 60.0, y=hr, mode="lines", name="HR", line=dict(color="#2b6cb0"))
    )
    top = (np.nanmax(hr) if np.isfinite(hr).any() else 60.0) + 10
    for i, (kind, starts) in enumerate((events or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=np.asarray(starts, dtype=np.float64) / 3600.0,
                y=np.full(len(starts), top + 6 * i),
                mode="markers",
                name=f"{kind} ({len(starts)})",
                marker=dict(
                    symbol="line-ns-open", size=12, color=_EVENT_COLOURS.get(kind.split()[0], "#555")
                ),
                hovertemplate=f"{kind} at %{{x:.3f}} h<extra></extra>",
            )
        )
    fig.update_layout(
        title=title, xaxis_title="time (h)", yaxis_title="bpm", height=260, margin=dict(t=40, b=40)
    )
    return fig


def interval_trend(
    trend: Mapping[str, Sequence[float | None]], title: str = "QT and QTc per minute"
) -> go.Figure:
    """QT, QTc (Bazett, Fridericia) and RR per minute of a long record: ``trend`` is
    :meth:`ecgcore.beats.intervals.IntervalTrend.to_json` (keys ``qt_ms``, ``qtc_bazett_ms``,
    ``qtc_fridericia_ms``, ``rr_ms``); minutes without a value leave a gap. RR is on its own axis."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    lines = (
        ("qt_ms", "QT", "#2b6cb0"),
        ("qtc_bazett_ms", "QTc Bazett", "#c05621"),
        ("qtc_fridericia_ms", "QTc Fridericia", "#2f855a"),
    )
    for key, name, colour in (*lines, ("rr_ms", "RR", "#555555")):
        values = np.array([np.nan if v is None else v for v in trend.get(key, [])], dtype=np.float64)
        fig.add_trace(
            go.Scatter(
                x=np.arange(values.size) / 60.0, y=values, mode="lines", name=name, line=dict(color=colour)
            ),
            row=2 if key == "rr_ms" else 1,
            col=1,
        )
    fig.update_yaxes(title_text="ms", row=1, col=1)
    fig.update_yaxes(title_text="RR (ms)", row=2, col=1)
    fig.update_xaxes(title_text="time (h)", row=2, col=1)
    fig.update_layout(
        title=title,
        height=380,
        margin=dict(t=60, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0),
    )
    return fig


def beat_classes_over_time(
    samples: np.ndarray, classes: Sequence[str], fs: float, minutes_per_bin: int = 5
) -> go.Figure:
    """Stacked counts of each beat class per ``minutes_per_bin`` minutes (N on its own axis scale)."""
    samples = np.asarray(samples)
    labels = np.asarray(classes)
    edges = np.arange(
        0, (samples.max() if samples.size else 0) + minutes_per_bin * 60 * fs + 1, minutes_per_bin * 60 * fs
    )
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.4, 0.6], vertical_spacing=0.05)
    hours = edges[:-1] / fs / 3600
    for name, colour in BEAT_CLASS_COLOURS.items():
        counts, _ = (
            np.histogram(samples[labels == name], bins=edges) if edges.size > 1 else (np.zeros(0), None)
        )
        if name == "N":
            fig.add_trace(go.Bar(x=hours, y=counts, name=name, marker_color=colour), row=1, col=1)
        elif counts.any():
            fig.add_trace(go.Bar(x=hours, y=counts, name=name, marker_color=colour), row=2, col=1)
    fig.update_layout(
        barmode="stack", title=f"Beat classes per {minutes_per_bin} min", height=320, margin=dict(t=40, b=40)
    )
    fig.update_xaxes(title_text="time (h)", row=2, col=1)
    return fig


def cluster_template(
    template: np.ndarray, examples: np.ndarray, span_s: tuple[float, float], label: str, count: int
) -> go.Figure:
    """One morphology cluster: its example beats (thin, grey) under its template (thick, class colour).

    ``template`` and each row of ``examples`` are both leads' morphology vectors end to end
    (:mod:`ecgcore.beats.features`), drawn as two panels side by side.
    """
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.02)
    n = template.size // 2
    t = np.linspace(span_s[0], span_s[1], n) * 1000
    for lead in range(2):
        part = slice(lead * n, (lead + 1) * n)
        for row in np.atleast_2d(examples):
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=row[part],
                    mode="lines",
                    line=dict(color="rgba(120,120,120,0.4)", width=1),
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=1,
                col=lead + 1,
            )
        fig.add_trace(
            go.Scatter(
                x=t,
                y=template[part],
                mode="lines",
                line=dict(color=BEAT_CLASS_COLOURS.get(label, "black"), width=3),
                showlegend=False,
                name=f"lead {lead + 1}",
            ),
            row=1,
            col=lead + 1,
        )
    fig.update_layout(title=f"{label} · {count} beats", height=220, margin=dict(t=35, b=25, l=10, r=10))
    fig.update_xaxes(title_text="ms")
    return fig


def holter_strip(
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    start_s: float,
    beat_samples: np.ndarray,
    beat_classes: Sequence[str],
    title: str = "",
    boundaries: Mapping[str, np.ndarray] | None = None,
) -> go.Figure:
    """A strip of a long record on ECG paper (one row per lead) with each beat's class over it (a label
    that is not a beat class, e.g. ``~`` for a rejected detection, in grey) in a row above the paper.

    ``signal`` ``[leads, samples]`` starts at ``start_s`` of the record; ``beat_samples`` are sample
    indices relative to ``signal``. The time axis counts from the strip's start; the title says where.
    ``boundaries`` (``{"qrs_on" | "qrs_off" | "t_off" | "p_on": samples relative to the strip, NaN for
    none}``) are drawn as thin dashed lines across the strip, so a reader sees where each interval was taken.
    Each lead is drawn about its median: an ambulatory recorder's DC offset (several mV on some records)
    would put the trace off its row of paper.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.size:
        signal = signal - np.median(signal, axis=1, keepdims=True)
    fig = ecg_paper(signal, fs, leads, layout="rows", title=title or f"from {start_s:.1f} s")
    beat_samples = np.asarray(beat_samples)
    for s, label in zip(beat_samples, beat_classes):
        if 0 <= s < signal.shape[1]:
            fig.add_annotation(  # just above the paper, clear of the trace and the boundary lines
                x=s / fs,
                y=1.0,
                yref="paper",
                yanchor="bottom",
                text=f"<b>{label}</b>",
                showarrow=False,
                font=dict(size=12, color=BEAT_CLASS_COLOURS.get(label, "#999999")),
            )
    for name, positions in (boundaries or {}).items():
        colour = _BOUNDARY_COLOURS.get(name, _CALIPER)
        for s in np.asarray(positions, dtype=np.float64):
            if np.isfinite(s) and 0 <= s < signal.shape[1]:
                fig.add_vline(x=s / fs, line=dict(color=colour, width=1, dash="dot"))
    return fig


#: Colours of the event markers :func:`hr_trend` draws, by the first word of the kind.
_EVENT_COLOURS = {"VT": "#c53030", "V": "#c53030", "SVT": "#dd6b20", "S": "#dd6b20", "pause": "#2d3748"}

#: Colours of the wave boundaries :func:`holter_strip` draws.
_BOUNDARY_COLOURS = {"p_on": "#805ad5", "qrs_on": "#0057b8", "qrs_off": "#0057b8", "t_off": "#2f855a"}


# --- dataset comparison ---------------------------------------------------------------------------
def label_heatmap(profiles: Sequence, share: bool = True) -> go.Figure:
    """Classes (rows) by source (columns): the share of each source's records with the class (or counts).

    ``profiles`` are :class:`ecgcore.data.compare.DatasetProfile`; a class a source cannot express is
    left blank and marked "n/a" (not zero).
    """
    classes = list(dict.fromkeys(c for p in profiles for c in p.label_counts))
    counts = np.array(
        [[np.nan if p.label_counts.get(c) is None else p.label_counts[c] for p in profiles] for c in classes],
        dtype=float,
    )
    totals = np.array([max(p.records, 1) for p in profiles], dtype=float)
    z = counts / totals * 100 if share else counts
    text = [
        ["n/a" if np.isnan(n) else f"{int(n)}" + (f" ({v:.1f}%)" if share else "") for n, v in zip(row, zrow)]
        for row, zrow in zip(counts, z)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{p.name} (n={p.records})" for p in profiles],
            y=classes,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar=dict(title="% of records" if share else "records"),
            hoverongaps=False,
        )
    )
    label_set = profiles[0].label_set if profiles else ""
    fig.update_layout(
        title=f"Label distribution ({label_set})",
        yaxis=dict(autorange="reversed"),
        height=max(320, 26 * len(classes) + 120),
    )
    return fig


def dataset_comparison(profiles: Sequence) -> go.Figure:
    """Sampling rates, record lengths, age and sex of several sources side by side (2 x 2 panels)."""
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "Sampling rate (records)",
            "Record length (s)",
            "Age (years)",
            "Sex (share of records)",
        ),
    )
    palette = ["#2c7fb8", "#d95f0e", "#31a354", "#756bb1", "#e7298a", "#666666"]
    for i, p in enumerate(profiles):
        colour = palette[i % len(palette)]
        group = dict(legendgroup=p.name, marker_color=colour)
        fig.add_trace(
            go.Bar(x=[f"{k:g} Hz" for k in p.rates], y=list(p.rates.values()), name=p.name, **group),
            row=1,
            col=1,
        )
        length_name = p.name + (" (nominal)" if p.durations_nominal else "")
        fig.add_trace(go.Box(y=p.durations_s, name=length_name, showlegend=False, **group), row=1, col=2)
        fig.add_trace(go.Box(y=p.ages, name=p.name, showlegend=False, **group), row=2, col=1)
        total = max(sum(p.sex.values()), 1)
        fig.add_trace(
            go.Bar(
                x=list(p.sex),
                y=[v / total * 100 for v in p.sex.values()],
                name=p.name,
                showlegend=False,
                **group,
            ),
            row=2,
            col=2,
        )
    fig.update_layout(barmode="group", height=620, legend=dict(orientation="h", y=-0.08))
    fig.update_yaxes(type="log", row=1, col=2)
    return fig


# --- ECGs as images, studies, efficiency -------------------------------------------------------------------


def representations_figure(
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    layout: str = "3x4+II",
    size: int = 64,
    field_leads: Sequence[str] = ("I", "II", "V2"),
) -> go.Figure:
    """One record as the models of the representation studies see it: chart, GAF, MTF and RP side by side.

    ``signal``: float millivolts ``[len(leads), samples]`` (band-passed). The fields show leads
    ``field_leads`` as red, green and blue (:func:`ecgcore.data.representations.signal_image`).
    """
    from ecgcore.data.representations import signal_image

    kinds = (("chart", f"chart ({layout})"), ("gaf", "GAF (summation)"), ("mtf", "MTF"), ("rp", "RP"))
    fig = make_subplots(
        rows=1, cols=4, subplot_titles=[t for _, t in kinds], column_widths=[0.4, 0.2, 0.2, 0.2]
    )
    for col, (kind, _) in enumerate(kinds, start=1):
        img = signal_image(signal, fs, leads, kind, layout=layout, size=size, field_leads=field_leads)
        rgb = np.repeat(img, 3, axis=0) if img.shape[0] == 1 else img[:3]
        fig.add_trace(go.Image(z=rgb.transpose(1, 2, 0), hoverinfo="skip"), row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        title_text=f"fields: {', '.join(field_leads)} as red, green, blue; {size} x {size}",
        title_font_size=12,
    )
    return fig


def study_figures(study) -> dict[str, go.Figure]:
    """Optuna's own plotly figures of one study: history, parameter importances, parallel coordinates.

    A figure Optuna cannot draw yet (no finished trial; importances need two or more parameters and
    completed trials) is left out.
    """
    import optuna.visualization as ov

    makers = {
        "history": ov.plot_optimization_history,
        "importances": ov.plot_param_importances,
        "parallel": ov.plot_parallel_coordinate,
    }
    out = {}
    for name, make in makers.items():
        try:
            out[name] = make(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
    return out


def efficiency_figure(frame: pd.DataFrame, score: str = "score", score_label: str = "score") -> go.Figure:
    """Score against parameters, multiply-accumulates and disk size (log x), one point per run.

    ``frame``: columns ``label``, ``params``, ``macs``, ``disk_bytes`` and ``score`` (any metric).
    """
    cols = (("params", "parameters"), ("macs", "MACs per sample"), ("disk_bytes", "disk size (bytes)"))
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, subplot_titles=[t for _, t in cols])
    for col, (key, title) in enumerate(cols, start=1):
        fig.add_trace(
            go.Scatter(
                x=frame[key],
                y=frame[score],
                mode="markers+text",
                text=frame["label"],
                textposition="top center",
                marker=dict(size=9),
                showlegend=False,
                hovertemplate=f"%{{text}}<br>{title} %{{x:.3s}}<br>{score_label} %{{y:.4f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(type="log", title_text=title, row=1, col=col)
    fig.update_yaxes(title_text=score_label, row=1, col=1)
    fig.update_layout(height=380, margin=dict(l=50, r=10, t=40, b=40))
    return fig
