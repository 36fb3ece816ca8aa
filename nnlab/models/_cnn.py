"""Convolutional network: Conv2D on images, Conv1D on sequences (time x features).

Block i: ``hidden_i`` convolution (``width`` filters, ``kernel_size``, "same" padding, so
the spatial size only changes at pooling; no bias when batch norm follows) -> ``norm_i`` -> ``act_i`` -> ``drop_i``. With
``residual`` the block output is ``skip + block(x)`` (``add_i``, after the dropout); the
skip is the block input, or a bias-free 1x1 convolution ``proj_i`` when the channel
count differs from ``width`` (the first block).

Downsampling: ``pool`` ("max" or "avg") is the pooling layer ``pool_i`` that may follow
block i, ``pool: none`` never downsamples; ``downsample`` is the rule for where and by how
much (see :func:`pool_factors`):

- ``cover``: after every block while the map is at least ``MIN_POOL_SIZE`` wide, pool by the
  smallest factor >= 2 that would let the receptive field of the features reach across the
  whole input if every later block pooled by the same factor. The receptive field of what
  global average pooling reads therefore covers the input at any depth: 8x8 digits at depth
  2 pool by 2 twice (8 -> 4 -> 2), a 16x16 canvas by 3 twice (16 -> 6 -> 2).
- ``halve``: pool by 2 after every block while the map is at least ``MIN_POOL_SIZE`` wide.
- ``alternate``: pool by 2 after every second block except the last while the map is at
  least ``MIN_POOL_SIZE`` wide (with "valid" pooling). This was the only rule before the key
  existed; a 2-block net never pools, so its receptive field is 5x5 with 3x3 kernels.

``cover`` and ``halve`` pool with "same" padding, so an odd map keeps its edge.
Global average pooling (``gap``) precedes the head.
"""

from __future__ import annotations

import math
from typing import Any

from nnlab.models._base import FAMILIES
from nnlab.models._blocks import BuildContext, as_sequence, block_name

DOWNSAMPLE_RULES = ("cover", "halve", "alternate")
MIN_POOL_SIZE = 4
ALTERNATE_EVERY = 2


def pool_factors(shape: tuple[int, ...], depth: int, kernel_size: int, rule: str) -> list[int]:
    """The pooling factor after each of ``depth`` blocks (1: no pooling) for an input of spatial
    ``shape`` (one or two dimensions), by the ``downsample`` rule."""
    if rule not in DOWNSAMPLE_RULES:  # the spec validates it; a programming error here
        raise ValueError(f"unknown downsample rule {rule!r}")
    smallest, target = min(shape), max(shape)
    factors = []
    field, jump = 1, 1  # receptive field and distance between neighbouring units, in input positions
    for i in range(1, depth + 1):
        field += (kernel_size - 1) * jump
        factor = 1
        if smallest >= MIN_POOL_SIZE:
            if rule == "halve":
                factor = 2
            elif rule == "alternate":
                factor = 2 if i % ALTERNATE_EVERY == 0 and i < depth else 1
            else:
                factor = 2
                while factor < smallest and _reach(field, jump, smallest, factor, depth - i, kernel_size) < target:
                    factor += 1
        if factor > 1:
            field += (factor - 1) * jump
            jump *= factor
            smallest = smallest // factor if rule == "alternate" else math.ceil(smallest / factor)
        factors.append(factor)
    return factors


def _reach(field: int, jump: int, size: int, factor: int, blocks_left: int, kernel_size: int) -> int:
    """The receptive field after pooling by ``factor`` now and after each later block (while the map
    stays at least ``MIN_POOL_SIZE`` wide)."""
    field += (factor - 1) * jump
    jump *= factor
    size = math.ceil(size / factor)
    for _ in range(blocks_left):
        field += (kernel_size - 1) * jump
        if size >= MIN_POOL_SIZE:
            field += (factor - 1) * jump
            jump *= factor
            size = math.ceil(size / factor)
    return field


@FAMILIES.register("cnn", kinds=("image", "sequence"), options=("kernel_size", "pool", "downsample"),
                   act_layers=True)
def build_cnn(ctx: BuildContext, x: Any) -> Any:
    cfg = ctx.cfg
    layers = ctx.keras.layers
    if ctx.info.kind == "image":
        conv, gap = layers.Conv2D, layers.GlobalAveragePooling2D
        pools = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}
    else:
        x = as_sequence(ctx, x)
        conv, gap = layers.Conv1D, layers.GlobalAveragePooling1D
        pools = {"max": layers.MaxPooling1D, "avg": layers.AveragePooling1D}
    spatial = tuple(int(d) for d in x.shape[1:-1])
    factors = pool_factors(spatial, cfg.depth, cfg.kernel_size, cfg.downsample)
    padding = "valid" if cfg.downsample == "alternate" else "same"

    for i, factor in enumerate(factors, start=1):
        name = block_name("hidden", i)
        h = conv(cfg.width, cfg.kernel_size, padding="same", use_bias=ctx.weight_bias,
                 **ctx.weight_kwargs(name, cfg.activation))(x)
        h = ctx.block_tail(h, i)
        if cfg.residual:
            skip = x
            if x.shape[-1] != cfg.width:
                proj = block_name("proj", i)
                skip = conv(cfg.width, 1, use_bias=False, **ctx.weight_kwargs(proj))(x)
            h = ctx.add(skip, h, block_name("add", i))
        x = h
        if cfg.pool != "none" and factor > 1:
            x = pools[cfg.pool](factor, padding=padding, name=block_name("pool", i))(x)
    return gap(name="gap")(x)
