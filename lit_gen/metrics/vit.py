"""The DINOv2 ViT image encoder (Oquab et al. 2023), plain PyTorch, with the parameter names
of the official `dinov2_vit{s,b,l,g}14` checkpoints (`*_pretrain.pth`, a plain state dict),
so torch-fidelity's `dinov2-vit-*-14` feature extractors can run from a local file without
torch.hub fetching the model code. Output: the normalised class token (B, dim).
"""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor

#: name -> (dim, depth, heads, ffn): the four DINOv2 backbones (patch 14, trained at 518 px)
DINOV2_ARCHS = {
    "dinov2-vit-s-14": (384, 12, 6, "mlp"),
    "dinov2-vit-b-14": (768, 12, 12, "mlp"),
    "dinov2-vit-l-14": (1024, 24, 16, "mlp"),
    "dinov2-vit-g-14": (1536, 40, 24, "swiglu"),
}


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """DINOv2's SwiGLUFFNFused (ViT-g): hidden width 2/3 of 4 * dim, rounded up to 8."""

    def __init__(self, dim: int):
        super().__init__()
        hidden = (int(4 * dim * 2 / 3) + 7) // 8 * 8
        self.w12, self.w3 = nn.Linear(dim, 2 * hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(nn.functional.silu(a) * b)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)  # (B, heads, N, c / heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: str):
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.ls2 = nn.LayerNorm(dim, eps=1e-6), LayerScale(dim)
        self.mlp = SwiGLU(dim) if ffn == "swiglu" else Mlp(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, dim)


class DinoV2ViT(nn.Module):
    """DINOv2 ViT-{S,B,L,g}/14 (no register tokens), class-token features.

    Args:
        name: a key of DINOV2_ARCHS.
        train_size: the side the position embeddings were learned at (518 px, 37x37 patches);
            other sizes interpolate them bicubically as DINOv2 does (offset 0.1, no antialias).
    """

    patch = 14

    def __init__(self, name: str, train_size: int = 518):
        super().__init__()
        dim, depth, heads, ffn = DINOV2_ARCHS[name]
        self.patch_embed = PatchEmbed(dim, self.patch)
        grid = train_size // self.patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, dim) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # unused at inference; in the file
        self.blocks = nn.ModuleList(Block(dim, heads, ffn) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dim = dim

    def interpolate_pos_encoding(self, h: int, w: int) -> Tensor:
        n = self.pos_embed.shape[1] - 1
        m = int(math.sqrt(n))
        h0, w0 = h // self.patch, w // self.patch
        if h0 == w0 == m:
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
        grid = nn.functional.interpolate(grid, scale_factor=((w0 + 0.1) / m, (h0 + 0.1) / m),
                                         mode="bicubic", antialias=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[-1])
        return torch.cat([pos[:, :1], grid], dim=1).to(self.pos_embed.dtype)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(b, -1, -1), t], dim=1)
        t = t + self.interpolate_pos_encoding(h, w)
        for block in self.blocks:
            t = block(t)
        return self.norm(t)[:, 0]
