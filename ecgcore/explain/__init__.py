"""Explanations that are measured, calibration, and the per-record report.

>>> attr = attribute(model, x, target=0, method="ig", baseline="zeros", fs=500.0)   # doctest: +SKIP
>>> lead_importance(attr.values, leads), wave_importance(attr.values, measurement.beat_fiducials)  # doctest: +SKIP

* :mod:`ecgcore.explain.attributions`: captum attributions ``[leads, samples]`` and per-lead / per-wave summaries.
* :mod:`ecgcore.explain.faithfulness`: deletion curves against random deletion; model-randomisation check.
* :mod:`ecgcore.explain.calibration`: reliability, ECE, temperature / Platt scaling stored with a run.
* :mod:`ecgcore.explain.report`: one record + one run -> summary dict, PDF / PNG report.
"""

from ecgcore.explain.attributions import (
    BASELINES,
    METHODS,
    WAVES,
    Attribution,
    attribute,
    default_baseline,
    describe_baseline,
    lead_importance,
    make_baseline,
    wave_coverage,
    wave_importance,
    wave_masks,
)
from ecgcore.explain.calibration import (
    Calibration,
    calibrate_run,
    calibrated_prediction,
    calibration_report,
    fit_calibration,
    load_calibration,
    reliability,
)
from ecgcore.explain.faithfulness import (
    deletion_curve,
    deletion_test,
    random_deletion_curve,
    randomisation_test,
)
from ecgcore.explain.report import (
    DISCLAIMER,
    attribution_figure,
    explain_record,
    figure_bytes,
    render_report,
    save_figure,
    write_report,
)

__all__ = [
    "BASELINES",
    "DISCLAIMER",
    "METHODS",
    "WAVES",
    "Attribution",
    "Calibration",
    "attribute",
    "attribution_figure",
    "calibrate_run",
    "calibrated_prediction",
    "calibration_report",
    "default_baseline",
    "deletion_curve",
    "deletion_test",
    "describe_baseline",
    "explain_record",
    "figure_bytes",
    "fit_calibration",
    "lead_importance",
    "load_calibration",
    "make_baseline",
    "random_deletion_curve",
    "randomisation_test",
    "reliability",
    "render_report",
    "save_figure",
    "wave_coverage",
    "wave_importance",
    "wave_masks",
    "write_report",
]
