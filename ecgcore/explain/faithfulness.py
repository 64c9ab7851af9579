"""Is an attribution faithful to the model? Two measurements instead of a picture.

* Deletion curve (Petsiuk et al., RISE, BMVC 2018): replace the most-attributed input samples by the
  baseline in steps of ``1/n_steps`` of the samples and record the explained output. Signed maps
  (IG, GradientSHAP, occlusion: :data:`SIGNED_METHODS`) are ranked by
  ``attribution * sign(score - baseline score)``, i.e. most evidence for the output's departure from
  the baseline first, so the rule also holds for regression outputs that lie below their baseline.
  Unsigned maps (saliency = |gradient|, Grad-CAM after its ReLU) say how much a sample matters, not in
  which direction, so they are ranked by their value alone: flipping their order when the output lies
  below the baseline would delete the least important samples first. A faithful map moves the output to the baseline score quickly: its area under the
  curve is smaller than for deleting samples in random order (seeded, averaged over repeats). The
  *normalised* area rescales the curve so that the input scores 1 and the baseline 0.
* Model-randomisation sanity check (Adebayo et al., Sanity checks for saliency maps, NeurIPS 2018):
  re-initialise the weights (all at once, or cascading from the head towards the input by the
  model's layer groups) and compare the new attributions with the original ones by Spearman rank
  correlation of their absolute values. A map that survives randomisation explains the input, not
  the model; the correlation must be low. For reference the result also gives the rank correlation
  of the map with the input's own magnitude (``input_spearman``): gradient-times-input methods such
  as IG inherit part of their structure from the input, whatever the weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from ecgcore.explain.attributions import Attribution, as_input, attribute, make_baseline, output

#: Methods whose maps carry a direction (evidence for or against the output); the others are magnitudes.
SIGNED_METHODS: frozenset[str] = frozenset({"ig", "gradientshap", "occlusion"})


@dataclass
class DeletionCurve:
    """Output after deleting each fraction of the samples; ``auc`` by the trapezoid rule over fractions."""

    fractions: np.ndarray
    scores: np.ndarray
    auc: float

    def normalised_auc(self) -> float | None:
        """Area of ``(score - end) / (start - end)``: 1 = no change until the end, 0 = immediate; ``None`` if start == end."""
        start, end = float(self.scores[0]), float(self.scores[-1])
        if abs(start - end) < 1e-6 * max(1.0, abs(start)):
            return None
        return float(np.trapezoid((self.scores - end) / (start - end), self.fractions))


def _deletion_scores(
    model: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    order: np.ndarray,
    target: int,
    fractions: np.ndarray,
) -> np.ndarray:
    """Outputs for ``x`` with the first ``fraction`` of ``order`` (flat sample indices) set to ``base``."""
    flat_x, flat_b = x.reshape(-1), base.reshape(-1)
    order_t = torch.as_tensor(order, device=x.device)
    batch = flat_x.repeat(len(fractions), 1)
    for i, fraction in enumerate(fractions):
        k = int(round(fraction * len(order)))
        batch[i, order_t[:k]] = flat_b[order_t[:k]]
    return output(model, batch.reshape(len(fractions), *x.shape[1:]), target)


def deletion_curve(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    attribution: Attribution,
    *,
    baseline: str = "zeros",
    fs: float = 500.0,
    n_steps: int = 20,
) -> DeletionCurve:
    """Deletion curve of ``attribution`` (its target) on input ``x``, deleting to ``baseline``."""
    inp = as_input(x, model)
    base = make_baseline(inp, baseline, fs)
    direction = 1.0
    if attribution.method in SIGNED_METHODS:
        direction = np.sign(attribution.score - float(output(model, base, attribution.target)[0])) or 1.0
    order = np.argsort(-(attribution.values.reshape(-1) * direction), kind="stable")
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    scores = _deletion_scores(model, inp, base, order, attribution.target, fractions)
    return DeletionCurve(fractions, scores, float(np.trapezoid(scores, fractions)))


def random_deletion_curve(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: int,
    *,
    baseline: str = "zeros",
    fs: float = 500.0,
    n_steps: int = 20,
    n_repeats: int = 5,
    seed: int = 0,
) -> tuple[DeletionCurve, float]:
    """The mean deletion curve over ``n_repeats`` seeded random orders, and the SD of their areas."""
    inp = as_input(x, model)
    base = make_baseline(inp, baseline, fs)
    rng = np.random.default_rng(seed)
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    curves = np.stack(
        [
            _deletion_scores(model, inp, base, rng.permutation(inp.numel()), target, fractions)
            for _ in range(n_repeats)
        ]
    )
    aucs = np.trapezoid(curves, fractions, axis=1)
    mean = curves.mean(axis=0)
    return DeletionCurve(fractions, mean, float(np.trapezoid(mean, fractions))), float(aucs.std())


def deletion_test(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    attribution: Attribution,
    *,
    baseline: str = "zeros",
    fs: float = 500.0,
    n_steps: int = 20,
    n_repeats: int = 5,
    seed: int = 0,
) -> dict:
    """Deletion areas of ``attribution`` and of random deletion, raw and normalised (lower = more faithful).

    ``gain`` is how much sooner the output reaches the baseline score than under random deletion:
    ``(random area - area) / (score - baseline score)``, sign-corrected; above 0 beats random.
    """
    curve = deletion_curve(model, x, attribution, baseline=baseline, fs=fs, n_steps=n_steps)
    rand, rand_sd = random_deletion_curve(
        model,
        x,
        attribution.target,
        baseline=baseline,
        fs=fs,
        n_steps=n_steps,
        n_repeats=n_repeats,
        seed=seed,
    )
    start, end = float(curve.scores[0]), float(curve.scores[-1])
    gain = (rand.auc - curve.auc) * np.sign(start - end) / max(abs(start - end), 1e-12)
    return {
        "baseline": baseline,
        "n_steps": n_steps,
        "n_random": n_repeats,
        "auc": curve.auc,
        "random_auc": rand.auc,
        "random_auc_sd": rand_sd,
        "normalised_auc": curve.normalised_auc(),
        "random_normalised_auc": rand.normalised_auc(),
        "gain": gain,
        "beats_random": bool(gain > 0),
        "curve": curve.scores.tolist(),
        "random_curve": rand.scores.tolist(),
    }


def reinitialise(modules: list[nn.Module]) -> None:
    """Reset the parameters (and batch-norm statistics) of every submodule that knows how to."""
    for module in modules:
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of ``|a|`` and ``|b|`` (``None`` when one of them is constant)."""
    rho = spearmanr(np.abs(a).reshape(-1), np.abs(b).reshape(-1)).statistic
    return None if not np.isfinite(rho) else float(rho)


def randomisation_test(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    attribution: Attribution,
    *,
    mode: str = "full",
    fs: float = 500.0,
    seed: int = 0,
    **attribute_kwargs,
) -> dict:
    """Rank correlation between ``attribution`` and the same method on a re-initialised copy of ``model``.

    Parameters
    ----------
    mode
        ``"full"``: every weight re-initialised at once (one extra attribution). ``"cascading"``: the
        layer groups re-initialised one more at a time from the head towards the input, one
        correlation per step (as many extra attributions as groups).
    attribute_kwargs
        Passed to :func:`ecgcore.explain.attribute` (``n_steps``, ``internal_batch_size`` ...).
    """
    if mode not in ("full", "cascading"):
        raise ValueError(f"unknown randomisation mode {mode!r}; expected 'full' or 'cascading'")
    randomised = copy.deepcopy(model)
    groups = randomised.layer_groups() if hasattr(randomised, "layer_groups") else [("all", [randomised])]
    stages = (
        [(name, modules) for name, modules in reversed(groups)]
        if mode == "cascading"
        else [("all", [randomised])]
    )
    torch.manual_seed(seed)
    steps = []
    for name, modules in stages:
        reinitialise(modules)
        new = attribute(
            randomised,
            x,
            attribution.target,
            attribution.method,
            attribution.baseline or "zeros",
            fs=fs,
            seed=seed,
            **attribute_kwargs,
        )
        steps.append(
            {"randomised_through": name, "spearman": rank_correlation(attribution.values, new.values)}
        )
    inp = as_input(x, model).detach().cpu().numpy()[0]
    return {
        "mode": mode,
        "spearman": steps[-1]["spearman"],
        "steps": steps,
        "input_spearman": rank_correlation(attribution.values, inp),
    }
