"""Multilayer perceptron: ``depth`` blocks of Dense(``width``).

Block i: ``hidden_i`` Dense (no bias when batch norm follows) -> ``norm_i`` (batch/layer, optional)
-> ``act_i`` Activation -> ``drop_i`` Dropout (if dropout > 0). With ``residual`` the block output is
``skip + block(x)`` (``add_i``), the add coming after the dropout; the skip is the
block input, or a bias-free linear Dense ``proj_i`` when its width differs from
``width`` (only ever the first block). Image and sequence inputs are flattened first.
"""

from __future__ import annotations

from typing import Any

from nnlab.models._base import FAMILIES
from nnlab.models._blocks import BuildContext, block_name


@FAMILIES.register("mlp", kinds=("tabular", "image", "sequence"), options=(), act_layers=True)
def build_mlp(ctx: BuildContext, x: Any) -> Any:
    cfg = ctx.cfg
    keras = ctx.keras
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    for i in range(1, cfg.depth + 1):
        h = ctx.dense(cfg.width, block_name("hidden", i), activation=cfg.activation, use_bias=ctx.weight_bias)(x)
        h = ctx.block_tail(h, i)
        if cfg.residual:
            skip = x
            if x.shape[-1] != cfg.width:
                skip = ctx.dense(cfg.width, block_name("proj", i), use_bias=False)(x)
            h = ctx.add(skip, h, block_name("add", i))
        x = h
    return x
