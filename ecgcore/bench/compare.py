"""Before and after in one run: the reference configuration beside the defaults, and the issue-20 goals.

Both are read from a :func:`~ecgcore.bench.run.run_bench` result, so every figure comes from the same
run and every share uses the matrix-product rate measured in it.
"""

from __future__ import annotations

#: Issue 20's goals, as fractions: training's share of the matmul rate in its own precision, one record's
#: time over its bound, batched prediction over the training forward rate, IG's seconds and time over bound.
GOALS = {
    "training_share": 0.5,
    "one_record_x_bound": 1.5,
    "batched_vs_forward": 0.7,
    "ig_s": 3.0,
    "ig_x_bound": 2.0,
}


def _row(what: str, unit: str, before: tuple, after: tuple, rate: bool) -> dict:
    """One comparison row; ``before``/``after`` are ``(configuration, value, share of bound)``."""
    (b_name, b_value, b_share), (a_name, a_value, a_share) = before, after
    return {
        "what": what,
        "unit": unit,
        "before": b_name,
        "before_value": b_value,
        "before_share": b_share,
        "after": a_name,
        "after_value": a_value,
        "after_share": a_share,
        "speedup": (a_value / b_value) if rate else (b_value / a_value),
    }


def comparison(result: dict) -> list[dict]:
    """Reference configuration -> optimised default for each job of the run (shares at the fp32 matmul rate).

    training 500 Hz: the plain loop (file per access, fp32) -> the trainer in its default precision;
    training 100 Hz: the trainer in fp32 -> its default precision; one record: the plain fp32 model
    under ``no_grad`` -> the inference path; a folder: the plain model one record at a time -> batched
    :meth:`~ecgcore.predict.Predictor.predict_many`; IG: captum on the plain fp32 model, one step per
    pass -> the default execution (folded, batched, convergence check, ``precision="auto"``).
    """
    rows = []
    training = result["training"]
    default = {r["fs"]: r for r in training if r["amp"]}
    fp32 = {r["fs"]: r for r in training if not r["amp"]}
    ref = result["reference"]
    if 500.0 in default:
        d = default[500.0]
        rows.append(
            _row(
                "training 500 Hz",
                "samples/s",
                ("plain loop fp32", ref["samples_per_s"], ref["share_of_matmul_peak"]),
                (f"trainer {d['precision']}", d["samples_per_s"], d["share_of_matmul_peak"]),
                rate=True,
            )
        )
    if 100.0 in default and 100.0 in fp32:
        d, f = default[100.0], fp32[100.0]
        rows.append(
            _row(
                "training 100 Hz",
                "samples/s",
                ("trainer fp32", f["samples_per_s"], f["share_of_matmul_peak"]),
                (f"trainer {d['precision']}", d["samples_per_s"], d["share_of_matmul_peak"]),
                rate=True,
            )
        )
    for p in result["prediction"]:
        fs = f"{p['fs']:g} Hz"
        afters = [(f"inference path {p['precision']}", p["predict_ms_median"], p["after_share"])]
        if "compiled_ms_median" in p:
            afters.append(
                (
                    f"compiled {p['precision']} (predict, 2,000+ records)",
                    p["compiled_ms_median"],
                    p["compiled_share"],
                )
            )
        for after in afters:
            before = ("plain model fp32", p["before_ms_median"], p["before_share"])
            rows.append(_row(f"one record {fs}", "ms", before, after, rate=False))
        one_at_a_time = 1000.0 / p["before_ms_median"]
        rows.append(
            _row(
                f"folder {fs}",
                "records/s",
                ("plain model, one by one", one_at_a_time, p["before_share"]),
                (f"predict_many {p['precision']}", p["batched_records_per_s"], p["batched_share"]),
                rate=True,
            )
        )
    saliency = {r["asked"]: r for r in result.get("saliency", [])}
    if "reference" in saliency and "auto" in saliency:
        b, a = saliency["reference"], saliency["auto"]
        rows.append(
            _row(
                f"IG {b['fs']:g} Hz",
                "s",
                (f"captum fp32, {b['steps']} steps one by one", b["seconds"], b["share"]),
                (
                    f"batched {a['precision']}, {a['steps']} steps (gap {100 * a['gap']:.1f} %)",
                    a["seconds"],
                    a["share"],
                ),
                rate=False,
            )
        )
    return rows


def goals(result: dict) -> list[dict]:
    """Issue 20's goals against this run's figures: ``value``, ``goal`` and ``met`` (measured, never assumed)."""
    out = []
    default = [r for r in result["training"] if r["fs"] == 500.0 and r["amp"]]
    if default:
        d = default[0]
        out.append(
            {
                "goal": f"training 500 Hz ({d['precision']}) >= 50 % of the matmul rate in its precision",
                "value": d["share_of_precision_peak"],
                "target": GOALS["training_share"],
                "met": d["share_of_precision_peak"] >= GOALS["training_share"],
                "note": f"{100 * d['share_of_precision_peak']:.1f} % ({100 * d['share_of_matmul_peak']:.0f} % of the "
                "fp32 rate)",
            }
        )
    for p in result["prediction"]:
        if p["fs"] != 500.0:
            continue
        paths = [("", p["predict_ms_median"], "default path")]
        if "compiled_ms_median" in p:
            paths.append(
                (
                    ", compiled (predict, 2,000+ records)",
                    p["compiled_ms_median"],
                    f"compiled; compile {p['compile_s']:.0f} s once",
                )
            )
        for suffix, ms, how in paths:
            x = ms / p["bound_ms"]
            out.append(
                {
                    "goal": f"one record 500 Hz within 1.5x of its FLOP bound (fp32 rate){suffix}",
                    "value": x,
                    "target": GOALS["one_record_x_bound"],
                    "met": x <= GOALS["one_record_x_bound"],
                    "note": f"{x:.2f}x ({ms:.1f} ms against {p['bound_ms']:.1f} ms, {how})",
                }
            )
        forward = p.get("training_forward_samples_per_s")
        if forward:
            v = p["batched_records_per_s"] / forward
            out.append(
                {
                    "goal": "batched prediction 500 Hz >= 70 % of the training forward rate",
                    "value": v,
                    "target": GOALS["batched_vs_forward"],
                    "met": v >= GOALS["batched_vs_forward"],
                    "note": f"{100 * v:.0f} % ({p['batched_records_per_s']:.1f} records/s against {forward:.1f} "
                    "forwards/s)",
                }
            )
    for r in result.get("saliency", []):
        if r["asked"] != "auto":
            continue
        x = r["seconds"] / r["bound_s"]
        out.append(
            {
                "goal": "IG 500 Hz under 3 s and within 2x of its bound",
                "value": r["seconds"],
                "target": GOALS["ig_s"],
                "met": r["seconds"] < GOALS["ig_s"] and x <= GOALS["ig_x_bound"],
                "note": f"{r['seconds']:.1f} s, {x:.1f}x the bound {r['bound_s']:.2f} s ({r['steps']} steps "
                f"{r['precision']})",
            }
        )
    return out


def format_comparison(result: dict) -> str:
    """The before/after table and the goals, as plain text."""
    rows = result.get("comparison") or comparison(result)
    w = max(len(r["before"]) for r in rows) + 2
    v = max(len(r["after"]) for r in rows) + 2
    lines = [
        "before -> after in this run (share = FLOP bound at this run's fp32 matmul rate / measured)",
        f"{'':<18}{'before':<{w}}{'value':>10}{'share':>7}   {'after':<{v}}{'value':>10}{'share':>7}{'x':>7}",
    ]
    for r in rows:
        lines.append(
            f"{r['what']:<18}{r['before']:<{w}}{r['before_value']:>10.2f}{100 * r['before_share']:>6.0f}%   "
            f"{r['after']:<{v}}{r['after_value']:>10.2f}{100 * r['after_share']:>6.0f}%{r['speedup']:>6.1f}x"
            f"  ({r['unit']})"
        )
    for g in result.get("goals") or goals(result):
        lines.append(f"goal: {g['goal']}: {g['note']} -> {'met' if g['met'] else 'NOT met'}")
    return "\n".join(lines)
