"""ECGs as images: chart renderings and GAF / MTF / RP fields, each a plain function of a signal.

Charts
------
:func:`render_chart` draws a ``[leads, samples]`` millivolt signal on ECG paper the way a printed
12-lead ECG looks: ``columns`` columns of ``strip_s``-second strips (each column a later stretch of the
record, leads taken column by column from ``layout.leads``), optionally a full-length rhythm strip of one
lead below, at ``mm_per_s`` (25 mm/s) and ``mm_per_mV`` (10 mm/mV). The paper is
``columns * strip_s * mm_per_s`` mm wide and ``rows * row_mm`` mm high; it is drawn into ``width x height``
pixels (``px_per_mm`` may differ along x and y, as when a chart is shrunk to 224 x 224).

The rasteriser is vectorised numpy, no plotting library: each pixel column of a panel is filled between
the lowest and highest trace point that falls in it, widened to meet its neighbours' points so the trace
is connected. The panel boxes come back with the image (:class:`Chart.panels`), so that an attribution
map over the image can be summed per lead (:func:`lead_importance`).

Fields (Wang & Oates 2015; Eckmann et al. 1987)
-----------------------------------------------
Per lead, after piecewise aggregate approximation (PAA) to ``size`` points (segment bounds
``linspace(0, n, size + 1)`` truncated to integers, as ``pyts`` does):

* GAF: the series min-max scaled to [-1, 1] is read as ``cos(phi)``; summation field
  ``cos(phi_i + phi_j)``, difference field ``sin(phi_i - phi_j)``;
* MTF: the full-rate series is cut into ``n_bins`` quantile bins, the first-order transition matrix ``W``
  (row-normalised counts of bin a -> bin b) is read at every pair of time points, then averaged over
  the PAA segments (as ``pyts.image.MarkovTransitionField``: ``P W P^T`` with ``P`` the fraction of each
  segment in each bin);
* RP: the unthresholded recurrence plot ``|x_i - x_j|`` of the PAA series (the full-rate plot would be
  5000 x 5000 per lead).

They match ``pyts`` 0.14 (``GramianAngularField``, ``MarkovTransitionField``, ``RecurrencePlot``) to
float precision (tests compare them); ``pyts`` itself is not used at run time because it compiles its
numba kernels at import, 20-70 s here, every time.

Every function returns float32; :func:`to_uint8` maps a field onto 0-255 for the image caches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ecgcore.vocab import LEADS_12, canonical_lead

# --- charts --------------------------------------------------------------------------------------------------

#: Grey levels of the chart: paper, minor grid (1 mm), major grid (5 mm), trace.
PAPER, MINOR, MAJOR, TRACE = 255, 235, 200, 0
#: Below this many pixels per mm the 1 mm grid is left out (it would paint the paper grey).
MINOR_GRID_MIN_PX = 3.0


@dataclass(frozen=True)
class ChartLayout:
    """How a chart is laid out and drawn (every field is part of an image cache's key)."""

    name: str = "3x4+II"
    columns: int = 4
    strip_s: float = 2.5
    rhythm_lead: str | None = "II"
    leads: tuple[str, ...] = LEADS_12
    width: int = 224
    height: int = 224
    grid: bool = True
    row_mm: float = 30.0
    mm_per_s: float = 25.0
    mm_per_mV: float = 10.0
    line_px: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "leads", tuple(canonical_lead(x) for x in self.leads))
        if self.rhythm_lead is not None:
            object.__setattr__(self, "rhythm_lead", canonical_lead(self.rhythm_lead))
        if self.columns < 1 or self.strip_s <= 0 or self.width < 8 or self.height < 8 or not self.leads:
            raise ValueError(f"bad chart layout {self}")
        if self.line_px < 1:
            raise ValueError(f"chart layout {self.name}: line_px must be >= 1")

    @property
    def lead_rows(self) -> int:
        return math.ceil(len(self.leads) / self.columns)

    @property
    def rows(self) -> int:
        return self.lead_rows + (self.rhythm_lead is not None)

    @property
    def duration(self) -> float:
        """Seconds of signal the chart shows (the rhythm strip's length)."""
        return self.columns * self.strip_s

    @property
    def paper_mm(self) -> tuple[float, float]:
        """Paper width and height in mm."""
        return self.duration * self.mm_per_s, self.rows * self.row_mm

    @property
    def px_per_mm(self) -> tuple[float, float]:
        """Pixels per mm along x and y."""
        w_mm, h_mm = self.paper_mm
        return self.width / w_mm, self.height / h_mm

    def to_dict(self) -> dict:
        return {**self.__dict__, "leads": list(self.leads)}


#: Named layouts: the vision study's two (4 x 2.5 s with a lead II strip; 2 x 5 s with a lead II strip)
#: and a 12 x 10 s one.
LAYOUTS: dict[str, ChartLayout] = {
    "3x4+II": ChartLayout(),
    "6x2+II": ChartLayout(name="6x2+II", columns=2, strip_s=5.0, row_mm=20.0),
    "12x1": ChartLayout(name="12x1", columns=1, strip_s=10.0, rhythm_lead=None, row_mm=15.0),
}


def chart_layout(name: str = "3x4+II", **changes) -> ChartLayout:
    """A named layout (:data:`LAYOUTS`), with fields changed (``width=``, ``height=``, ``grid=`` ...)."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown chart layout {name!r}; expected one of {', '.join(LAYOUTS)}")
    return replace(LAYOUTS[name], **changes) if changes else LAYOUTS[name]


@dataclass(frozen=True)
class Panel:
    """One lead's strip on the chart: pixel box ``[y0:y1, x0:x1]``, the seconds it shows and its baseline row."""

    lead: str
    row: int
    column: int
    x0: int
    x1: int
    y0: int
    y1: int
    t0: float
    t1: float
    baseline: float


@dataclass
class Chart:
    """A rendered chart: uint8 ``[height, width]`` grey image and the panels drawn on it."""

    image: np.ndarray
    panels: list[Panel] = field(default_factory=list)
    layout: ChartLayout = field(default_factory=ChartLayout)


def chart_panels(layout: ChartLayout) -> list[Panel]:
    """Where each lead goes: lead panels column by column, then the rhythm strip (if any) on the last row."""
    px_x, px_y = layout.px_per_mm
    strip_px = layout.strip_s * layout.mm_per_s * px_x
    row_px = layout.row_mm * px_y
    panels = []
    for k, lead in enumerate(layout.leads):
        col, row = divmod(k, layout.lead_rows)
        panels.append(_panel(lead, row, col, col * strip_px, (col + 1) * strip_px, row_px, layout))
    if layout.rhythm_lead is not None:
        panels.append(_panel(layout.rhythm_lead, layout.lead_rows, -1, 0.0, layout.width, row_px, layout))
    return panels


def _panel(lead: str, row: int, col: int, x0: float, x1: float, row_px: float, layout: ChartLayout) -> Panel:
    t0 = 0.0 if col < 0 else col * layout.strip_s
    t1 = layout.duration if col < 0 else t0 + layout.strip_s
    return Panel(
        lead=lead,
        row=row,
        column=col,
        x0=int(round(x0)),
        x1=int(round(x1)),
        y0=int(round(row * row_px)),
        y1=int(round((row + 1) * row_px)),
        t0=t0,
        t1=t1,
        baseline=(row + 0.5) * row_px,
    )


def blank_paper(layout: ChartLayout) -> np.ndarray:
    """The empty paper (with grid lines when ``layout.grid``)."""
    paper = np.full((layout.height, layout.width), PAPER, np.uint8)
    if not layout.grid:
        return paper
    px_x, px_y = layout.px_per_mm
    w_mm, h_mm = layout.paper_mm
    for step, level in ((1.0, MINOR), (5.0, MAJOR)):
        if step == 1.0 and min(px_x, px_y) < MINOR_GRID_MIN_PX:
            continue
        xs = np.unique(np.round(np.arange(0.0, w_mm + 1e-9, step) * px_x).astype(int))
        ys = np.unique(np.round(np.arange(0.0, h_mm + 1e-9, step) * px_y).astype(int))
        paper[:, xs[xs < layout.width]] = level
        paper[ys[ys < layout.height], :] = level
    return paper


def render_chart(
    signal: np.ndarray, fs: float, leads: Sequence[str], layout: ChartLayout | str = "3x4+II"
) -> Chart:
    """Draw ``signal`` (float mV ``[len(leads), samples]`` at ``fs`` Hz) as a chart.

    Leads of the layout that the signal lacks are derived when they are limb leads and I and II are
    present (III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2), else left blank. A
    record shorter than the layout's duration leaves the rest of the strips blank. Amplitudes beyond a
    panel are clipped to its box.
    """
    layout = chart_layout(layout) if isinstance(layout, str) else layout
    signal = np.asarray(signal, dtype=np.float32)
    rows = _lead_rows(signal, [canonical_lead(x) for x in leads])
    image = blank_paper(layout)
    px_x, px_y = layout.px_per_mm
    panels = chart_panels(layout)
    for p in panels:
        x = rows.get(p.lead)
        if x is None:
            continue
        i0, i1 = int(round(p.t0 * fs)), min(int(round(p.t1 * fs)), x.shape[-1])
        if i1 - i0 < 2:
            continue
        seg = x[i0:i1]
        xs = p.x0 + np.arange(i1 - i0) / fs * layout.mm_per_s * px_x
        ys = p.baseline - seg * layout.mm_per_mV * px_y
        _draw_trace(image, xs, ys, p, layout.line_px)
    return Chart(image=image, panels=panels, layout=layout)


def _lead_rows(signal: np.ndarray, leads: list[str]) -> dict[str, np.ndarray]:
    rows = {lead: signal[i] for i, lead in enumerate(leads)}
    if "I" in rows and "II" in rows:
        i, ii = rows["I"], rows["II"]
        derived = {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
        for lead, value in derived.items():
            rows.setdefault(lead, value)
    return rows


def _draw_trace(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, p: Panel, line_px: int) -> None:
    """Fill, in each pixel column the trace crosses, the rows between its lowest and highest point there.

    Each column's span also reaches halfway to the neighbouring columns' first and last points so that a
    steep stroke stays connected. Vectorised: one ``minimum/maximum.reduceat`` over the columns, then
    one broadcast comparison over the panel's box.
    """
    cols = np.clip(np.floor(xs).astype(np.int64), p.x0, p.x1 - 1)
    starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
    lo = np.minimum.reduceat(ys, starts)
    hi = np.maximum.reduceat(ys, starts)
    first = ys[starts]
    last = ys[np.r_[starts[1:] - 1, len(ys) - 1]]
    # connect to the previous column's last point and the next column's first point (halfway each)
    prev_last = np.r_[first[0], last[:-1]]
    next_first = np.r_[first[1:], last[-1]]
    lo = np.minimum(lo, np.minimum((prev_last + first) / 2, (last + next_first) / 2))
    hi = np.maximum(hi, np.maximum((prev_last + first) / 2, (last + next_first) / 2))
    half = (line_px - 1) / 2
    top = np.clip(np.floor(lo - half), p.y0, p.y1 - 1).astype(np.int64)
    bottom = np.clip(np.floor(hi + half), p.y0, p.y1 - 1).astype(np.int64)
    r = np.arange(p.y0, p.y1)[:, None]
    mask = (r >= top[None, :]) & (r <= bottom[None, :])
    c = cols[starts]
    block = image[p.y0 : p.y1, c]
    block[mask] = TRACE
    image[p.y0 : p.y1, c] = block
    if line_px > 1:  # thicken sideways too
        for dx in range(1, line_px // 2 + 1):
            for shift in (-dx, dx):
                cc = np.clip(c + shift, p.x0, p.x1 - 1)
                side = image[p.y0 : p.y1, cc]
                side[mask] = TRACE
                image[p.y0 : p.y1, cc] = side


def lead_importance(
    attribution: np.ndarray, panels: Sequence[Panel], absolute: bool = True
) -> dict[str, float]:
    """Share of an image attribution map (``[H, W]`` or ``[C, H, W]``) that falls in each lead's panels.

    A lead drawn twice (in its panel and as the rhythm strip) gets both. Shares sum to 1 over the leads
    (0 for all when the map is zero in every panel).
    """
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim == 3:
        a = a.sum(axis=0)
    if absolute:
        a = np.abs(a)
    totals: dict[str, float] = {}
    for p in panels:
        totals[p.lead] = totals.get(p.lead, 0.0) + float(a[p.y0 : p.y1, p.x0 : p.x1].sum())
    s = sum(totals.values())
    return {lead: (v / s if s > 0 else 0.0) for lead, v in totals.items()}


# --- fields --------------------------------------------------------------------------------------------------

#: Leads of the representation study's fields (one image channel each).
FIELD_LEADS: tuple[str, ...] = ("I", "II", "V2")
FIELD_KINDS: tuple[str, ...] = ("gasf", "gadf", "mtf", "rp")
#: What :func:`signal_image` draws: a chart or a field (``gaf`` is the summation field, ``gasf``).
IMAGE_KINDS: tuple[str, ...] = ("chart", "gaf", "gadf", "mtf", "rp")


def paa(x: np.ndarray, size: int) -> np.ndarray:
    """Piecewise aggregate approximation of ``[..., n]`` to ``[..., size]`` (segment means; pyts's bounds)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    if not 1 <= size <= n:
        raise ValueError(f"PAA size {size} must be between 1 and the series length {n}")
    if size == n:
        return x
    bounds = np.linspace(0, n, size + 1).astype(np.int64)
    csum = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(x, axis=-1)], axis=-1)
    return (csum[..., bounds[1:]] - csum[..., bounds[:-1]]) / np.diff(bounds)


def _minmax(x: np.ndarray, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Per series min-max scaling to [low, high] (a constant series maps to ``low``, as sklearn does)."""
    lo = x.min(axis=-1, keepdims=True)
    span = x.max(axis=-1, keepdims=True) - lo
    span = np.where(span == 0, 1.0, span)
    return (x - lo) / span * (high - low) + low


def gaf(x: np.ndarray, size: int = 64, method: str = "summation") -> np.ndarray:
    """Gramian angular field of each series in ``[..., n]``: ``[..., size, size]`` in [-1, 1]."""
    if method not in ("summation", "difference"):
        raise ValueError(f"GAF method must be 'summation' or 'difference', not {method!r}")
    cos = _minmax(paa(x, size))
    sin = np.sqrt(np.clip(1 - cos**2, 0, 1))
    if method == "summation":
        out = cos[..., :, None] * cos[..., None, :] - sin[..., :, None] * sin[..., None, :]
    else:
        out = sin[..., :, None] * cos[..., None, :] - cos[..., :, None] * sin[..., None, :]
    return out.astype(np.float32)


def _quantile_bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of every point, by the series' own quantiles (equal edges merged, as pyts does)."""
    edges = np.moveaxis(np.percentile(x, np.linspace(0, 100, n_bins + 1)[1:-1], axis=-1), 0, -1)
    keep = np.concatenate(
        [~np.isclose(0, np.diff(edges, axis=-1), rtol=0, atol=1e-8), np.ones((*edges.shape[:-1], 1), bool)],
        axis=-1,
    )
    return ((x[..., :, None] > edges[..., None, :]) & keep[..., None, :]).sum(axis=-1)


def mtf(x: np.ndarray, size: int = 64, n_bins: int = 8) -> np.ndarray:
    """Markov transition field of each series in ``[..., n]``: ``[..., size, size]`` in [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    lead_shape, n = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, n)
    m = len(flat)
    bins = _quantile_bins(flat, n_bins)
    pair = bins[:, :-1] * n_bins + bins[:, 1:] + (np.arange(m) * n_bins * n_bins)[:, None]
    counts = np.bincount(pair.ravel(), minlength=m * n_bins * n_bins).reshape(m, n_bins, n_bins)
    rows = counts.sum(axis=2, keepdims=True)
    w = counts / np.where(rows == 0, 1, rows)
    if not 1 <= size <= n:
        raise ValueError(f"MTF size {size} must be between 1 and the series length {n}")
    bounds = np.linspace(0, n, size + 1).astype(np.int64)
    seg = np.searchsorted(bounds, np.arange(n), side="right") - 1
    frac = np.zeros((m, size, n_bins))
    np.add.at(frac, (np.repeat(np.arange(m), n), np.tile(seg, m), bins.ravel()), 1.0)
    frac /= np.diff(bounds)[None, :, None]
    out = frac @ w @ np.swapaxes(frac, 1, 2)
    return out.reshape(*lead_shape, size, size).astype(np.float32)


def rp(x: np.ndarray, size: int = 64) -> np.ndarray:
    """Unthresholded recurrence plot ``|x_i - x_j|`` of each PAA-reduced series: ``[..., size, size]``."""
    z = paa(x, size)
    return np.abs(z[..., :, None] - z[..., None, :]).astype(np.float32)


def field_image(signal: np.ndarray, kind: str, size: int = 64, n_bins: int = 8) -> np.ndarray:
    """One field per lead of ``signal [L, n]`` stacked as channels, as uint8 ``[L, size, size]``.

    ``kind``: ``gasf`` / ``gadf`` (summation / difference GAF), ``mtf`` or ``rp``. Scaling to 0-255: GAF
    from [-1, 1], MTF from [0, 1], RP divided by each lead's largest distance.
    """
    if kind == "gasf":
        return to_uint8(gaf(signal, size, "summation"), -1.0, 1.0)
    if kind == "gadf":
        return to_uint8(gaf(signal, size, "difference"), -1.0, 1.0)
    if kind == "mtf":
        return to_uint8(mtf(signal, size, n_bins), 0.0, 1.0)
    if kind == "rp":
        d = rp(signal, size)
        peak = d.max(axis=(-2, -1), keepdims=True)
        return to_uint8(d / np.where(peak > 0, peak, 1.0), 0.0, 1.0)
    raise ValueError(f"unknown field {kind!r}; expected one of {', '.join(FIELD_KINDS)}")


def to_uint8(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly onto 0-255 (clipped, rounded)."""
    return np.clip(np.rint((np.asarray(x) - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)


def signal_image(
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    kind: str,
    *,
    layout: ChartLayout | str = "3x4+II",
    size: int = 64,
    field_leads: Sequence[str] = FIELD_LEADS,
    n_bins: int = 8,
) -> np.ndarray:
    """One record as a uint8 image ``[C, H, W]``: a chart (C = 1) or a field of each of ``field_leads``.

    ``signal`` is float millivolts ``[len(leads), samples]`` at ``fs`` (limb leads derived from I and II
    when missing). Fields see the whole signal given; charts the layout's duration.
    """
    if kind == "chart":
        return render_chart(signal, fs, leads, layout).image[None]
    if kind not in IMAGE_KINDS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {', '.join(IMAGE_KINDS)}")
    rows = _lead_rows(np.asarray(signal, dtype=np.float32), [canonical_lead(x) for x in leads])
    wanted = [canonical_lead(x) for x in field_leads]
    missing = [lead for lead in wanted if lead not in rows]
    if missing:
        raise ValueError(f"{kind} needs leads {', '.join(wanted)}; the signal lacks {', '.join(missing)}")
    x = np.stack([rows[lead] for lead in wanted])
    return field_image(x, "gasf" if kind == "gaf" else kind, size, n_bins)
