"""The shipped beat classifier: it loads, is small, and beats the majority class on held-out dev records.

The held-out records are those its description lists as never trained on; the test needs the QT
Database development folder (``$ECGLAB_QTDB_DEV``, else ``../shared/qtdb-dev`` beside the project)
and is skipped without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ecgcore.beats.analysis import analyse_record
from ecgcore.beats.classify import DEFAULT_MODEL, load_classifier
from ecgcore.beats.evaluate import Counts, read_reference, score
from ecgcore.beats.features import LAYOUTS
from ecgcore.paths import PROJECT_DIR
from ecgcore.train.checkpoint import read_checkpoint

QTDB_DEV = Path(os.environ.get("ECGLAB_QTDB_DEV", PROJECT_DIR.parent / "shared" / "qtdb-dev"))


def test_shipped_model_loads_and_is_small():
    assert DEFAULT_MODEL.stat().st_size < 2 * 1024 * 1024
    classifier = load_classifier()
    x = np.zeros((3, LAYOUTS[classifier.inputs], 2 * classifier.half), dtype=np.float32)
    p = classifier.predict_proba(x)
    assert p.shape == (3, 5) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    _, meta = read_checkpoint(DEFAULT_MODEL)
    split = meta["trained_on"]["records"]
    assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))


def _macro_f1(counts: Counts) -> float:
    return float(np.mean([x["f1"] or 0.0 for x in counts.lines()[1:] if x["n_reference"]]))


@pytest.mark.slow
@pytest.mark.skipif(not QTDB_DEV.is_dir(), reason=f"no QT Database development folder at {QTDB_DEV}")
def test_shipped_model_beats_the_majority_class_on_held_out_records():
    _, meta = read_checkpoint(DEFAULT_MODEL)
    held_out = meta["trained_on"]["records"]["test"]
    # the three held-out records with the most non-N beats, so the comparison is not all N
    refs = {name: read_reference(QTDB_DEV / name) for name in held_out}
    chosen = sorted(held_out, key=lambda n: -int(np.sum(refs[n].classes != 0)))[:3]
    classifier = load_classifier()
    model, majority = Counts(), Counts()
    for name in chosen:
        result = analyse_record(QTDB_DEV / name, classifier)
        model.add(score(refs[name], result.samples, result.classes))
        majority.add(score(refs[name], result.samples, np.zeros_like(result.classes)))
    assert _macro_f1(model) > _macro_f1(majority) + 0.1


def test_beat_inference_leaves_subnormal_floats_working_for_the_rest_of_the_process():
    """Flushing denormals speeds beat inference up; it must not leak out (hypothesis refuses to run then)."""
    import torch

    classifier = load_classifier()
    classifier.predict_proba(np.zeros((2, LAYOUTS[classifier.inputs], 2 * classifier.half), dtype=np.float32))
    subnormal = torch.tensor([1e-40], dtype=torch.float32)
    assert (subnormal * 1.0).item() != 0.0
