"""``concat``: several backbones side by side, their features concatenated, one new head.

This is the architecture of transfer approach 1 ("combined"): the backbones of the HR, PR, QRS and QT
regression models each read the same ECG and a new classification head reads all four feature vectors.
``create_model("concat", ..., members=[config, ...])`` rebuilds it from the members' model configs, so a
checkpoint of a transferred model is as self-describing as any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest

import torch
from torch import nn

from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup
from ecgcore.models.registry import create_model, register


class ConcatBackbone(Backbone):
    """Backbones reading the same input, features concatenated: ``[B, L, S] -> [B, sum(feature_dim)]``."""

    def __init__(self, members: Sequence[Backbone]) -> None:
        super().__init__()
        if not members:
            raise ValueError("ConcatBackbone needs at least one backbone")
        self.members = nn.ModuleList(members)
        self.feature_dim = sum(m.feature_dim for m in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self.members], dim=1)

    def groups(self) -> list[LayerGroup]:
        """The members' groups merged level by level, aligned from the top (output side).

        Level ``k`` from the top holds every member's ``k``-th group from the top, so unfreezing "one more
        group from the top" opens the same depth in every member. A level is named after its members'
        group when they agree (``"block6"``), else ``"m0.block6+m1.stage4"``.
        """
        per_member = [list(reversed(m.groups())) for m in self.members]
        levels = []
        for level in zip_longest(*per_member):
            present = [(i, group) for i, group in enumerate(level) if group is not None]
            names = {name for _, (name, _) in present}
            name = (
                names.pop()
                if len(names) == 1 and len(present) == len(self.members)
                else "+".join(f"m{i}.{name}" for i, (name, _) in present)
            )
            levels.append((name, [module for _, (_, modules) in present for module in modules]))
        return list(reversed(levels))

    def last_conv(self) -> nn.Module | None:
        """The first member's time-resolved map (Grad-CAM on a concatenation is per member)."""
        return self.members[0].last_conv()


@register(
    "concat",
    description="Backbones of several models side by side with one new head (transfer approach 'combined')",
    reference="Howard & Ruder, Universal language model fine-tuning for text classification, ACL 2018 "
    "(transfer recipe); ECG Lab transfer study",
    listed=False,
)
def concat(
    n_leads: int,
    n_outputs: int,
    members: Sequence[dict] = (),
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build the concatenation of the backbones of ``members`` (model configs), with a new head."""
    if not members:
        raise ValueError("concat: members must list at least one model config")
    backbones = []
    for member in members:
        if int(member["n_leads"]) != n_leads:
            raise ValueError(
                f"concat: member {member['name']!r} reads {member['n_leads']} leads; "
                f"the combined model reads {n_leads}"
            )
        backbones.append(create_model(**member).backbone)
    backbone = ConcatBackbone(backbones)
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))
