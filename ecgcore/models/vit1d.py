"""``vit``: a 1D Vision Transformer over patches of the signal, one of the seed study's baselines.

Diagram (defaults)::

    x [B, L, S]
    -> patches: conv k=50 stride 50 (128)  -> [B, S/50, 128] tokens  (100 tokens for 10 s at 500 Hz)
       + [CLS] token, + learned positions (made for ``n_samples``; linearly interpolated for other lengths)
    -> block1..block4: pre-norm transformer blocks (4 heads, MLP 256, dropout .1)
    -> LayerNorm -> the CLS token (or the mean of the patch tokens, ``pool="mean"``)   [B, 128] (backbone ends)
    -> head: BN -> Dropout .25 -> Linear 128->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs

Attention is ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels where available).
Samples past the last whole patch are dropped, as by any strided patch embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup
from ecgcore.models.registry import register


class PatchEmbedding(nn.Module):
    """Patches by a strided convolution, plus a CLS token and learned position embeddings."""

    def __init__(self, n_leads: int, dim: int, patch_size: int, n_patches: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv1d(n_leads, dim, patch_size, stride=patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.positions = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.patch_size:
            raise ValueError(
                f"vit: input of {x.shape[-1]} samples is shorter than one patch ({self.patch_size})"
            )
        tokens = self.proj(x).transpose(1, 2)  # [B, T, dim]
        positions = self.positions
        if tokens.shape[1] + 1 != positions.shape[1]:
            patch_pos = F.interpolate(
                positions[:, 1:].transpose(1, 2), size=tokens.shape[1], mode="linear", align_corners=False
            ).transpose(1, 2)
            positions = torch.cat([positions[:, :1], patch_pos], dim=1)
        return torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + positions


class TransformerBlock(nn.Module):
    """Pre-norm transformer encoder block: ``x + MHSA(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, n_heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"vit: dim={dim} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(attended.transpose(1, 2).reshape(b, t, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTBackbone(Backbone):
    """Patch embedding, transformer blocks, final LayerNorm, CLS-token (or mean) pooling."""

    def __init__(
        self,
        n_leads: int,
        n_samples: int,
        patch_size: int,
        dim: int,
        depth: int,
        n_heads: int,
        mlp_dim: int,
        dropout: float,
        pool: str,
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"vit: pool={pool!r}; expected 'cls' or 'mean'")
        self.embed = PatchEmbedding(n_leads, dim, patch_size, max(1, n_samples // patch_size))
        self.blocks = nn.ModuleList(TransformerBlock(dim, n_heads, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.pool = pool
        self.feature_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 0] if self.pool == "cls" else x[:, 1:].mean(dim=1)

    def groups(self) -> list[LayerGroup]:
        """``stem`` (patch embedding), ``block1`` ... ``blockN`` (the final LayerNorm with the last block)."""
        groups = [("stem", [self.embed])] + [(f"block{i + 1}", [b]) for i, b in enumerate(self.blocks)]
        groups[-1][1].append(self.norm)
        return groups

    def last_conv(self) -> nn.Module:
        """The patch projection, the only convolution (a coarse, one-value-per-patch map)."""
        return self.embed.proj


@register(
    "vit",
    description="1D Vision Transformer (patches of 50 samples, 4 pre-norm blocks of dim 128, CLS token, "
    "interpolated learned positions); seed-study baseline",
    reference="Dosovitskiy et al., An image is worth 16x16 words: transformers for image recognition at "
    "scale, ICLR 2021",
)
def vit(
    n_leads: int,
    n_outputs: int,
    n_samples: int = 5000,
    patch_size: int = 50,
    dim: int = 128,
    depth: int = 4,
    n_heads: int = 4,
    mlp_dim: int = 256,
    dropout: float = 0.1,
    pool: str = "cls",
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``vit``; ``n_samples`` sets how many learned positions there are (other lengths interpolate)."""
    backbone = ViTBackbone(n_leads, n_samples, patch_size, dim, depth, n_heads, mlp_dim, dropout, pool)
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))
