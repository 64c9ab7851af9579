"""Morphology clusters: the template merge, k-means + merge on distinct shapes, relabelling a cluster."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.analysis import BeatAnalysis, recluster
from ecgcore.beats.cluster import cluster_beats, cosine, merge_templates


def test_merge_joins_similar_templates_and_keeps_distinct_ones():
    a = np.array([1.0, 2.0, 3.0, 0.0])
    near_a = a + np.array([0.05, -0.05, 0.0, 0.1])  # cosine > 0.99
    b = np.array([0.0, -1.0, 0.0, 3.0])  # cosine with a < 0
    assert cosine(a, near_a) > 0.99 > 0.0 > cosine(a, b)
    groups = merge_templates(np.stack([b, a, near_a]), np.array([5, 10, 20]), threshold=0.95)
    # a and near_a merge (30 beats, group 0: largest first); b stays alone (group 1)
    assert groups.tolist() == [1, 0, 0]


def test_merge_threshold_is_configurable():
    a = np.array([1.0, 0.0])
    c = np.array([1.0, 0.5])  # cosine 0.894
    assert merge_templates(np.stack([a, c]), np.array([1, 1]), threshold=0.95).tolist() == [0, 1]
    assert merge_templates(np.stack([a, c]), np.array([1, 1]), threshold=0.85).tolist() == [0, 0]


def test_merge_goes_most_similar_first():
    # x~y (0.995) and y~z (0.96) but x~z (0.93): merging x+y first, then their mean with z at 0.95
    x, y, z = np.array([1.0, 0.0]), np.array([1.0, 0.1]), np.array([1.0, 0.4])
    sims = cosine(x, y), cosine(y, z), cosine(x, z)
    assert sims[0] > sims[1] > 0.95 > sims[2]
    groups = merge_templates(np.stack([x, y, z]), np.array([1, 1, 1]), threshold=0.95)
    assert groups[0] == groups[1]


def _shapes(n_normal: int, n_wide: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.linspace(-1, 1, 66)
    normal, wide = np.exp(-((t / 0.05) ** 2)), -np.exp(-((t / 0.25) ** 2))
    morph = np.concatenate(
        [
            normal + 0.05 * rng.standard_normal((n_normal, t.size)),
            wide + 0.05 * rng.standard_normal((n_wide, t.size)),
        ]
    ).astype(np.float32)
    return morph, np.array([0] * n_normal + [2] * n_wide)


def test_kmeans_then_merge_finds_two_morphologies():
    morph, truth = _shapes(400, 40)
    assignment, clusters = cluster_beats(morph, truth, n_clusters=8, merge_threshold=0.9)
    assert len(clusters) == 2
    assert [c.count for c in clusters] == [400, 40] and [c.label for c in clusters] == ["N", "V"]
    assert np.array_equal(assignment, (truth == 2).astype(int))
    assert all(assignment[i] == 1 for i in clusters[1].examples)


def _analysis() -> BeatAnalysis:
    morph, truth = _shapes(60, 6, seed=1)
    n = truth.size
    classes = truth.copy()
    classes[-1] = CLASS_INDEX["N"]  # one wide beat the "model" called N
    a = BeatAnalysis(
        record="r",
        fs=250.0,
        n_samples=250 * 60,
        channels=("MLII",),
        samples=np.arange(n) * 220 + 100,
        classes=classes,
        probability=np.full(n, 0.9, dtype=np.float32),
        rr=np.ones((n, 2)),
        qrs_ms=np.where(truth == 2, 150.0, 90.0),
        morph=morph,
        cluster=np.zeros(n, dtype=np.int64),
    )
    recluster(a, n_clusters=6, merge_threshold=0.9)
    return a


def test_relabelling_a_cluster_relabels_its_beats_only():
    a = _analysis()
    wide = a.cluster[-1]
    before = a.classes.copy()
    changed = a.relabel_cluster(int(wide), "V")
    assert changed == 1
    members = a.cluster == wide
    assert np.all(a.classes[members] == CLASS_INDEX["V"])
    assert np.array_equal(a.classes[~members], before[~members])
    assert next(c for c in a.clusters if c.id == wide).label == "V"
    with pytest.raises(ValueError, match="unknown beat class"):
        a.relabel_cluster(int(wide), "X")


def test_cross_check_flags_a_premature_wide_beat_called_n():
    a = _analysis()
    a.rr[-1] = [0.6, 1.5]
    recluster(a, n_clusters=6, merge_threshold=0.9)
    assert a.flags[-1].startswith("N but premature, wide")
    assert not any(a.flags[:-1])


def test_hr_per_minute():
    a = _analysis()  # a beat every 220 samples at 250 Hz: 68.2 bpm, 66 beats -> minute 0 only
    assert a.hr_per_minute() == [pytest.approx(68.2, abs=0.05)]


def test_merging_two_clusters_moves_the_beats_and_renumbers_by_size():
    a = _analysis()
    assert len(a.clusters) == 2
    big, small = a.clusters[0], a.clusters[1]
    members_small = a.cluster == small.id
    moved = a.merge_clusters(small.id, big.id)  # the big one into the small one: the merged one is id 0
    assert moved == big.count
    assert len(a.clusters) == 1 and a.clusters[0].id == 0 and a.clusters[0].count == a.samples.size
    assert np.all(a.cluster == 0) and members_small.any()
    assert a.clusters[0].label == "N"  # the majority class of the merged beats
    assert np.allclose(a.clusters[0].template, a.morph.mean(axis=0), atol=1e-5)
    with pytest.raises(ValueError, match="no cluster 1"):
        a.merge_clusters(0, 1)
