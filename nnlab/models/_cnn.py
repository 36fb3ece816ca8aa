"""Convolutional network: Conv2D on images, Conv1D on sequences (time x features).

Block i: ``hidden_i`` convolution (``width`` filters, ``kernel_size``, "same" padding, so
the spatial size only changes at pooling) -> ``norm_i`` -> ``act_i`` -> ``drop_i``. With
``residual`` the block output is ``skip + block(x)`` (``add_i``, after the dropout); the
skip is the block input, or a bias-free 1x1 convolution ``proj_i`` when the channel
count differs from ``width`` (the first block).

Downsampling rule: with ``pool`` "max" or "avg", a 2x pooling layer ``pool_i`` follows
every second block (i = 2, 4, ...) except the last, as long as every spatial dimension
is still >= 4. ``pool: none`` never downsamples. Global average pooling (``gap``)
precedes the head.
"""

from __future__ import annotations

from typing import Any

from nnlab.models._base import FAMILIES
from nnlab.models._blocks import BuildContext, as_sequence, block_name

POOL_EVERY = 2
MIN_POOL_SIZE = 4


@FAMILIES.register("cnn", kinds=("image", "sequence"), options=("kernel_size", "pool"), act_layers=True)
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

    for i in range(1, cfg.depth + 1):
        name = block_name("hidden", i)
        h = conv(cfg.width, cfg.kernel_size, padding="same", **ctx.weight_kwargs(name, cfg.activation))(x)
        h = ctx.block_tail(h, i)
        if cfg.residual:
            skip = x
            if x.shape[-1] != cfg.width:
                proj = block_name("proj", i)
                skip = conv(cfg.width, 1, use_bias=False, **ctx.weight_kwargs(proj))(x)
            h = ctx.add(skip, h, block_name("add", i))
        x = h
        spatial = [int(d) for d in x.shape[1:-1]]
        if cfg.pool != "none" and i % POOL_EVERY == 0 and i < cfg.depth and min(spatial) >= MIN_POOL_SIZE:
            x = pools[cfg.pool](2, name=block_name("pool", i))(x)
    return gap(name="gap")(x)
