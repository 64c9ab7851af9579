"""Attributions on image inputs (charts, GAF / MTF / RP), and per lead through a chart's panel boxes.

Methods (captum): ``gradcam`` (Grad-CAM on the model's last feature map, ReLU, bilinearly upsampled to
the image), ``guided_gradcam`` (Grad-CAM times guided backpropagation, as in the vision study),
``ig`` (Integrated Gradients from a baseline image: blank ECG paper for a chart, zeros otherwise) and
``saliency`` (|gradient|). Each explains one raw model output (class logit), the model in eval mode.

:func:`chart_lead_importance` sums an attribution map of a chart inside each lead's panels
(:func:`ecgcore.data.representations.lead_importance`), so a chart model can be compared lead by lead
with a signal model (:func:`ecgcore.explain.attributions.lead_importance`).
:func:`layout_consistency` is the study's check: the same record drawn in two layouts, each explained
by its model, and the Spearman rank correlation of the two per-lead importances (1: the same ranking).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from ecgcore.data.representations import ChartLayout, blank_paper, lead_importance, render_chart
from ecgcore.explain.attributions import eval_mode

IMAGE_METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam", "ig", "saliency")


def as_image(x: np.ndarray | torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``[C, H, W]`` (uint8 0-255 or float) -> float32 ``[1, C, H, W]`` on the model's device (uint8 / 255)."""
    arr = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = arr.float() / 255.0 if arr.dtype == torch.uint8 else arr.float()
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[0] != 1:
        raise ValueError(f"expected one image as [C, H, W], got shape {tuple(arr.shape)}")
    return t.to(next(model.parameters()).device)


def _no_inplace(model: nn.Module) -> nn.Module:
    """A copy whose activations are not in place (guided backpropagation hooks cannot handle those)."""
    clone = copy.deepcopy(model)
    for m in clone.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return clone


def attribute_image(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    target: int,
    method: str = "gradcam",
    baseline: np.ndarray | torch.Tensor | None = None,
    n_steps: int = 32,
    per_channel: bool = False,
) -> np.ndarray:
    """Attribution of output ``target`` over the pixels: ``[H, W]`` float32 (summed over channels), or
    ``[C, H, W]`` with ``per_channel`` (Grad-CAM has no channel axis: its map is repeated).

    ``baseline`` (IG only): an image like ``image`` (default zeros).
    """
    from captum.attr import GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    if method not in IMAGE_METHODS:
        raise ValueError(
            f"unknown image attribution method {method!r}; expected one of {', '.join(IMAGE_METHODS)}"
        )
    if method in ("gradcam", "guided_gradcam") and model.last_conv() is None:
        raise ValueError(f"{method} needs a feature map; model {type(model).__name__} has none")
    net = _no_inplace(model) if method == "guided_gradcam" else model
    inp = as_image(image, net)
    with eval_mode(net):
        n_out = net(inp).shape[1]
        if not 0 <= int(target) < n_out:
            raise ValueError(f"target {target} is out of range: the model has {n_out} outputs")
        if method == "gradcam":
            cam = LayerGradCam(net, net.last_conv()).attribute(
                inp, target=int(target), relu_attributions=True
            )
            attr = LayerAttribution.interpolate(cam, tuple(inp.shape[-2:]), interpolate_mode="bilinear")
        elif method == "guided_gradcam":
            attr = GuidedGradCam(net, net.last_conv()).attribute(inp, target=int(target))
        elif method == "ig":
            base = torch.zeros_like(inp) if baseline is None else as_image(baseline, net)
            attr = IntegratedGradients(net).attribute(
                inp, baselines=base, target=int(target), n_steps=n_steps
            )
        else:
            attr = Saliency(net).attribute(inp.clone().requires_grad_(True), target=int(target), abs=True)
    values = attr.detach().float().cpu().numpy()[0]
    if per_channel:
        return np.broadcast_to(values, inp.shape[1:]).astype(np.float32)
    return values.sum(axis=0).astype(np.float32)


def chart_lead_importance(
    model: nn.Module,
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    layout: ChartLayout,
    target: int,
    method: str = "guided_gradcam",
) -> dict[str, float]:
    """Per-lead share of the attribution of a chart model for ``signal`` drawn in ``layout``."""
    chart = render_chart(signal, fs, leads, layout)
    baseline = blank_paper(layout)[None] if method == "ig" else None
    attr = attribute_image(model, chart.image[None], target, method, baseline=baseline)
    return lead_importance(attr, chart.panels)


@dataclass
class LayoutConsistency:
    """Per-lead importances of one record in two layouts and their Spearman rank correlation."""

    importance: tuple[dict[str, float], dict[str, float]]
    spearman: float
    top: tuple[str, str]


def layout_consistency(
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    first: tuple[nn.Module, ChartLayout],
    second: tuple[nn.Module, ChartLayout],
    target: int,
    method: str = "guided_gradcam",
) -> LayoutConsistency:
    """The layout-consistency check for one record (``first`` / ``second``: a model and the layout it reads)."""
    a = chart_lead_importance(first[0], signal, fs, leads, first[1], target, method)
    b = chart_lead_importance(second[0], signal, fs, leads, second[1], target, method)
    common = [lead for lead in a if lead in b]
    rho = (
        float(spearmanr([a[x] for x in common], [b[x] for x in common]).statistic)
        if len(common) > 1
        else float("nan")
    )
    return LayoutConsistency((a, b), rho, (max(a, key=a.get), max(b, key=b.get)))


def explain_image_record(
    predictor, record, method: str = "gradcam", target: str | int | None = None, n_steps: int = 32
) -> dict:
    """Attribution of an image run's prediction for one record, as per-lead shares (``explain`` on image runs).

    Charts: the share of the map in each lead's panels. Fields (one channel per lead): the share of the
    absolute attribution in each channel; Grad-CAM, which has no channel axis, gives no lead shares.
    """
    from ecgcore.data.image_inputs import IMAGE_SPECS
    from ecgcore.data.representations import LAYOUTS, chart_panels, to_uint8
    from ecgcore.explain.report import resolve_target

    name = predictor.representation
    if name not in IMAGE_SPECS:
        raise ValueError(f"explain works on signal and single-image runs; this run reads {name!r}")
    spec = IMAGE_SPECS[name]
    x = predictor.prepare(record)
    with torch.no_grad(), eval_mode(predictor.model):
        outputs = predictor.model(x).float().cpu().numpy()[0]
    index, target_name = resolve_target(predictor.meta, target, outputs)
    image = to_uint8(x[0].cpu().numpy(), 0.0, 1.0)
    result = {"record_id": record.record_id, "representation": name, "method": method, "target": target_name}
    if spec.kind == "chart":
        layout = spec.layout or LAYOUTS["3x4+II"]
        baseline = blank_paper(layout)[None] if method == "ig" else None
        attr = attribute_image(predictor.model, image, index, method, baseline=baseline, n_steps=n_steps)
        shares = lead_importance(attr, chart_panels(layout))
    elif method == "gradcam":
        shares = None
    else:
        attr = attribute_image(predictor.model, image, index, method, n_steps=n_steps, per_channel=True)
        mass = np.abs(attr).sum(axis=(1, 2))
        total = mass.sum()
        shares = {lead: float(m / total) if total > 0 else 0.0 for lead, m in zip(spec.field_leads, mass)}
    result["lead_importance"] = shares
    result["top_lead"] = max(shares, key=shares.get) if shares and max(shares.values()) > 0 else None
    result["score"] = float(outputs[index])
    return result
