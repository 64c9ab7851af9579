"""Morphology clusters: k-means over beat morphology vectors, then clusters merged by template similarity.

k-means (scikit-learn's mini-batch version, seeded) splits the beats into up to ``k`` groups; each
group's template is the mean of its beats' morphology vectors. Groups whose templates have a cosine
similarity of at least ``merge_threshold`` are then merged, most similar pair first, recomputing the
merged template as the count-weighted mean, until no pair is that similar. k-means over-splits the
dominant beat on purpose (its small variations with breathing and rate); the merge joins those pieces
and leaves genuinely different morphologies (ventricular, paced, aberrant beats) apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from ecgcore.beats.aami import CLASSES

#: Default number of k-means clusters before merging, and the cosine similarity that merges two.
N_CLUSTERS = 12
MERGE_THRESHOLD = 0.95
#: Example beats kept per cluster (their indices among the record's beats).
N_EXAMPLES = 5


@dataclass
class Cluster:
    """One morphology: its beats' count, majority class, template and a few example beats."""

    id: int
    count: int
    label: str
    template: np.ndarray
    examples: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "count": self.count,
            "class": self.label,
            "examples": [int(i) for i in self.examples],
            "template": [round(float(v), 4) for v in self.template],
        }


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / den if den > 0 else 0.0


def merge_templates(
    templates: np.ndarray, counts: np.ndarray, threshold: float = MERGE_THRESHOLD
) -> np.ndarray:
    """Group index of each template after merging, most similar pair first, while cosine >= ``threshold``.

    Returns ``[len(templates)]`` ints numbered 0.. by group size (largest first).
    """
    groups = {
        i: (np.asarray(templates[i], dtype=np.float64), int(counts[i]), [i]) for i in range(len(templates))
    }
    while len(groups) > 1:
        keys = list(groups)
        best, pair = threshold, None
        for a_i, a in enumerate(keys):
            for b in keys[a_i + 1 :]:
                sim = cosine(groups[a][0], groups[b][0])
                if sim >= best:
                    best, pair = sim, (a, b)
        if pair is None:
            break
        (ta, ca, ma), (tb, cb, mb) = groups[pair[0]], groups.pop(pair[1])
        groups[pair[0]] = ((ta * ca + tb * cb) / max(ca + cb, 1), ca + cb, ma + mb)
    order = sorted(groups.values(), key=lambda g: -g[1])
    out = np.zeros(len(templates), dtype=np.int64)
    for new_id, (_, _, members) in enumerate(order):
        out[members] = new_id
    return out


def cluster_beats(
    morph: np.ndarray,
    classes: np.ndarray,
    n_clusters: int = N_CLUSTERS,
    merge_threshold: float = MERGE_THRESHOLD,
    seed: int = 0,
) -> tuple[np.ndarray, list[Cluster]]:
    """Cluster index per beat and the clusters (largest first) of morphology vectors ``[n, d]``.

    ``classes`` are the beats' EC57 class indices; a cluster's class is its members' majority class.
    """
    n = len(morph)
    if n == 0:
        return np.zeros(0, dtype=np.int64), []
    k = max(1, min(n_clusters, n))
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(morph)
    raw = km.labels_
    counts = np.bincount(raw, minlength=k)
    present = np.flatnonzero(counts)
    templates = np.stack([morph[raw == c].mean(axis=0) for c in present])
    group_of = merge_templates(templates, counts[present], merge_threshold)
    mapping = np.zeros(k, dtype=np.int64)
    mapping[present] = group_of
    assignment = mapping[raw]
    return assignment, describe(morph, classes, assignment)


def describe(morph: np.ndarray, classes: np.ndarray, assignment: np.ndarray) -> list[Cluster]:
    """The clusters of an assignment: count, majority class, mean template, examples nearest the template."""
    clusters = []
    for cid in range(int(assignment.max()) + 1 if assignment.size else 0):
        members = np.flatnonzero(assignment == cid)
        if members.size == 0:
            continue
        template = morph[members].mean(axis=0)
        label = CLASSES[int(np.bincount(classes[members], minlength=len(CLASSES)).argmax())]
        distance = np.linalg.norm(morph[members] - template, axis=1)
        examples = members[np.argsort(distance)[:N_EXAMPLES]].tolist()
        clusters.append(Cluster(cid, int(members.size), label, template.astype(np.float32), examples))
    return clusters
