"""Image attributions land in the right lead's panel; the layout-consistency check ranks leads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecgcore.data.representations import chart_layout, chart_panels
from ecgcore.explain.images import attribute_image, chart_lead_importance, layout_consistency
from ecgcore.models import create_model
from ecgcore.vocab import LEADS_12

FS = 500.0


class PanelReader(nn.Module):
    """Output 0 = mean darkness inside one lead's panel(s) of a layout; output 1 = its negative."""

    def __init__(self, layout, lead: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        nn.init.constant_(self.conv.weight, -1.0)  # darkness 1 - x: 1 on the trace, 0 on white paper
        nn.init.constant_(self.conv.bias, 1.0)
        mask = torch.zeros(1, 1, layout.height, layout.width)
        for p in chart_panels(layout):
            if p.lead == lead:
                mask[..., p.y0 : p.y1, p.x0 : p.x1] = 1.0
        self.register_buffer("mask", mask / mask.sum())

    def last_conv(self) -> nn.Module:
        return self.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (self.conv(x) * self.mask).sum(dim=(1, 2, 3))
        return torch.stack([s, -s], dim=1)


def _signal() -> np.ndarray:
    t = np.arange(5000) / FS
    return np.stack([np.sin(2 * np.pi * (1 + 0.1 * k) * t) for k in range(12)]).astype(np.float32)


@pytest.mark.parametrize("method", ["ig", "saliency"])
def test_attribution_of_a_panel_reader_falls_in_its_lead(method):
    layout = chart_layout("3x4+II", width=320, height=160)
    share = chart_lead_importance(PanelReader(layout, "V3"), _signal(), FS, LEADS_12, layout, 0, method)
    assert share["V3"] == pytest.approx(1.0)
    assert max(v for k, v in share.items() if k != "V3") == 0.0


def test_gradcam_and_guided_gradcam_follow_their_definitions():
    from ecgcore.data.representations import render_chart

    layout = chart_layout("3x4+II", width=320, height=160, grid=False)
    chart = render_chart(_signal(), FS, LEADS_12, layout)
    model = PanelReader(layout, "V3")
    # Grad-CAM = ReLU(mean gradient x feature map): the darkness map scaled, > 0 exactly on the trace
    cam = attribute_image(model, chart.image[None], 0, "gradcam")
    assert ((cam > 0) == (chart.image == 0)).all()
    # guided Grad-CAM also multiplies by the gradient, which only the V3 panel has
    guided = attribute_image(model, chart.image[None], 0, "guided_gradcam")
    (v3,) = [p for p in chart.panels if p.lead == "V3"]
    inside = np.zeros_like(guided, bool)
    inside[v3.y0 : v3.y1, v3.x0 : v3.x1] = True
    assert np.abs(guided[inside]).max() > 0 and np.abs(guided[~inside]).max() == 0


def test_image_attribution_on_a_torchvision_model_and_bad_arguments():
    torch.manual_seed(0)
    model = create_model("resnet18", 1, 3)
    image = (np.random.default_rng(0).random((1, 64, 64)) * 255).astype(np.uint8)
    assert attribute_image(model, image, 1, "guided_gradcam").shape == (64, 64)
    with pytest.raises(ValueError, match="out of range"):
        attribute_image(model, image, 5, "gradcam")
    with pytest.raises(ValueError, match="unknown image attribution"):
        attribute_image(model, image, 0, "lime")


def test_layout_consistency_ranks_leads_across_layouts():
    a, b = chart_layout("3x4+II", width=320, height=160), chart_layout("6x2+II", width=320, height=280)
    same = layout_consistency(
        _signal(), FS, LEADS_12, (PanelReader(a, "V1"), a), (PanelReader(b, "V1"), b), 0, "ig"
    )
    assert same.top == ("V1", "V1") and same.spearman == pytest.approx(1.0)
    other = layout_consistency(
        _signal(), FS, LEADS_12, (PanelReader(a, "V1"), a), (PanelReader(b, "V2"), b), 0, "ig"
    )
    assert other.top == ("V1", "V2") and other.spearman < 0.5
