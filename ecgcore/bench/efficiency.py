"""Parameters, MACs, size, inference time and score of finished runs (the images page's table)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def efficiency_frame(run_ids: list[str], runs_dir: str | Path | None = None) -> pd.DataFrame:
    """Parameters, MACs, disk size, inference time and the headline test score of finished runs.

    One row per run (``label`` = model and representation); ``score`` is the run's first headline test
    metric (``test_auc`` for classification, ``test_mae`` for regression), ``score_name`` says which. The
    model is rebuilt from the run's best checkpoint and measured with
    :func:`ecgcore.models.model_efficiency` on the run's input shape.
    """
    from ecgcore.data.image_inputs import input_shape
    from ecgcore.models import model_efficiency
    from ecgcore.runs.store import RunStore
    from ecgcore.train.checkpoint import load_checkpoint

    store = RunStore(runs_dir)
    rows = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        config = store.config(run_id)
        best = store.run_dir(run_id) / "best.safetensors"
        if run["status"] != "done" or not best.exists():
            continue
        model, _ = load_checkpoint(best)
        stats = model_efficiency(model, input_shape(config.representation, config.preprocessing()), repeats=3)
        headline = (run.get("summary") or {}).get("headline", {})
        key = next((k for k in headline if k.startswith("test_")), None)
        rows.append(
            {
                "run_id": run_id,
                "label": f"{config.model} ({config.representation})",
                **stats,
                "score": headline.get(key) if key else None,
                "score_name": key,
            }
        )
    return pd.DataFrame(rows)
