"""The fast inference path of the beat classifier gives the reference model's probabilities."""

from __future__ import annotations

import numpy as np
import torch

from ecgcore.beats import features as feat
from ecgcore.beats.classify import NativeLSTM, flush_denormals, load_classifier
from ecgcore.beats.detect import detect_record
from ecgcore.beats.longrecord import analysis_windows, open_record


def _windows(path, classifier) -> np.ndarray:
    """Model inputs (in the classifier's layout) of the first window's beats of a synthetic 2-lead
    record (real features, not noise)."""
    info = open_record(path)
    samples = detect_record(info, window_s=60)
    w = next(analysis_windows(info, 60, 3))
    inside = samples[(samples >= w.keep_start) & (samples < w.keep_stop)]
    f = feat.chunk_features(
        w.signal,
        info.fs,
        inside - w.start,
        template_halves=(classifier.half,) if classifier.templates else (),
    )
    return classifier.model_input(f, feat.layout_rr(classifier.inputs, samples, info.fs)[: inside.size])


def test_fast_path_equals_the_reference_model(long_record):
    classifier = load_classifier()
    x = _windows(long_record[0], classifier)
    assert len(x) > 50
    with torch.no_grad(), flush_denormals():  # the reference: the training network, eval mode, fp32
        reference = torch.softmax(classifier.model.eval()(torch.from_numpy(x)), dim=1).numpy()
    threads = torch.get_num_threads()
    fast = classifier.predict_proba(x, batch_size=16)
    assert torch.get_num_threads() == threads  # the inference threads are set for the call only
    assert any(isinstance(m, NativeLSTM) for m in classifier.net.modules())  # the fast path ran
    assert np.abs(fast - reference).max() < 1e-4
    assert np.array_equal(fast.argmax(axis=1), reference.argmax(axis=1))
