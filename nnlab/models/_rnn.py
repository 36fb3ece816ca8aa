"""Recurrent network: ``depth`` stacked ``cell`` layers (LSTM, GRU or SimpleRNN).

Sequences are (time, features); images are read row by row, as (H, W*C).

Block i: ``hidden_i`` recurrent layer with ``width`` units -> ``norm_i`` -> ``drop_i``.
Every layer but the last returns the whole sequence; the last returns its final state.
``activation`` is the cell's own activation (Keras' ``activation`` argument, tanh by
default in Keras), so rnn blocks have no separate ``act_i`` layer. The kernel uses the
configured initializer; the recurrent kernel is always orthogonal (the Keras default),
seeded. L1/L2 apply to both kernels.

``residual`` adds ``skip + block(x)`` (``add_i``, after the dropout) only between
layers of equal width, so never with a projection: the first block gets a skip only
when the input already has ``width`` features. The last block's skip is the final time
step of its input (``crop_i`` then ``last_i``). With depth 1 and a different input width, ``residual``
therefore changes nothing.
"""

from __future__ import annotations

from typing import Any

from nnlab.models._base import FAMILIES
from nnlab.models._blocks import ACTIVATIONS, BuildContext, as_sequence, block_name


@FAMILIES.register("rnn", kinds=("sequence", "image"), options=("cell",), act_layers=False)
def build_rnn(ctx: BuildContext, x: Any) -> Any:
    cfg = ctx.cfg
    keras = ctx.keras
    cells = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple": keras.layers.SimpleRNN}
    x = as_sequence(ctx, x)
    steps = int(x.shape[1])
    for i in range(1, cfg.depth + 1):
        last = i == cfg.depth
        name = block_name("hidden", i)
        layer = cells[cfg.cell](
            cfg.width,
            activation=ACTIVATIONS.get(cfg.activation),
            return_sequences=not last,
            recurrent_initializer=keras.initializers.Orthogonal(seed=ctx.seed_for(f"{name}/recurrent_kernel")),
            recurrent_regularizer=ctx.regularizer(),
            **ctx.weight_kwargs(name, cfg.activation),
        )
        h = ctx.block_tail(layer(x), i, activate=False)
        if cfg.residual and x.shape[-1] == cfg.width:
            skip = x
            if last:
                skip = keras.layers.Cropping1D((steps - 1, 0), name=block_name("crop", i))(skip)
                skip = keras.layers.Reshape((cfg.width,), name=block_name("last", i))(skip)
            h = ctx.add(skip, h, block_name("add", i))
        x = h
    return x
