"""The beat-vs-artefact model's labels and loader."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.beats.artefact import artefact_labels, load_artefact_model
from ecgcore.beats.classify import DEFAULT_MODEL


def test_artefact_labels_are_one_for_unmatched_detections_only():
    assert artefact_labels(np.array([0, -1, 2, 4, -1])).tolist() == [0, 1, 0, 0, 1]


def test_loader_refuses_a_beat_classifier_and_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not a beat-vs-artefact"):
        load_artefact_model(DEFAULT_MODEL)
    with pytest.raises(FileNotFoundError):
        load_artefact_model(tmp_path / "none.safetensors")
