"""Transformer encoder over a sequence (images: rows as tokens, (H, W*C)).

``proj_in`` Dense to ``width`` -> ``pos_embed`` learned positional embedding -> ``depth``
post-norm encoder blocks -> ``gap`` global average pooling over tokens -> head.

Block i:
  attention: ``hidden_i`` MultiHeadAttention(``heads``, key_dim = width / heads) ->
             ``attn_drop_i`` -> [``attn_add_i``: x + ..., if residual] -> ``attn_norm_i``
  feed-forward: ``ffn_in_i`` Dense(width * ffn_multiplier) -> ``act_i`` Activation ->
             ``ffn_out_i`` Dense(width) -> ``ffn_drop_i`` -> [``ffn_add_i``] -> ``ffn_norm_i``
Dropout comes before the residual add, as in every family; norms are absent with
``normalization: none``.

MultiHeadAttention clones one kernel initializer for its query, key, value and output
projections, which with a fixed seed would start query, key and value identical; the
builder therefore re-draws each of the four kernels with its own derived seed.
"""

from __future__ import annotations

import functools
from typing import Any

from nnlab.errors import SpecError
from nnlab.models._base import FAMILIES
from nnlab.models._blocks import BuildContext, as_sequence, block_name

POSITION_STDDEV = 0.02


@functools.cache
def positional_embedding_class() -> type:
    """Define and register (once) the learned positional embedding layer."""
    import keras

    @keras.saving.register_keras_serializable(package="nnlab")
    class PositionalEmbedding(keras.layers.Layer):
        """Adds a learned vector per position: (batch, time, dim) -> same shape."""

        def __init__(self, max_length: int, initializer: Any = "zeros", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.max_length = int(max_length)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape: Any) -> None:
            self.embeddings = self.add_weight(
                name="embeddings",
                shape=(self.max_length, int(input_shape[-1])),
                initializer=self.initializer,
                trainable=True,
            )

        def call(self, inputs: Any) -> Any:
            length = inputs.shape[1]
            if length is None:
                length = keras.ops.shape(inputs)[1]
            positions = keras.ops.slice(self.embeddings, (0, 0), (length, self.embeddings.shape[1]))
            return inputs + keras.ops.cast(keras.ops.expand_dims(positions, 0), inputs.dtype)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update(
                max_length=self.max_length,
                initializer=keras.initializers.serialize(self.initializer),
            )
            return config

    return PositionalEmbedding


def _reseed_attention(ctx: BuildContext, attention: Any, name: str) -> None:
    for part in ("query", "key", "value", "output"):
        kernel = getattr(attention, f"{part}_dense").kernel
        init = ctx.initializer(f"{name}/{part}_kernel")
        kernel.assign(init(tuple(kernel.shape), dtype=kernel.dtype))


@FAMILIES.register("transformer", kinds=("sequence", "image"), options=("heads", "ffn_multiplier"),
                    act_layers=True)
def build_transformer(ctx: BuildContext, x: Any) -> Any:
    cfg = ctx.cfg
    keras = ctx.keras
    if cfg.width % cfg.heads != 0:
        raise SpecError(
            f"must divide model.width ({cfg.width}) into equal heads, but got {cfg.heads}",
            key="model.heads",
        )
    x = as_sequence(ctx, x)
    x = ctx.dense(cfg.width, "proj_in")(x)
    embedding = positional_embedding_class()(
        int(x.shape[1]),
        initializer=keras.initializers.RandomNormal(stddev=POSITION_STDDEV, seed=ctx.seed_for("pos_embed")),
        name="pos_embed",
    )
    x = embedding(x)
    for i in range(1, cfg.depth + 1):
        name = block_name("hidden", i)
        attention = keras.layers.MultiHeadAttention(
            num_heads=cfg.heads, key_dim=cfg.width // cfg.heads, **ctx.weight_kwargs(name)
        )
        a = attention(x, x)
        _reseed_attention(ctx, attention, name)
        a = ctx.apply_dropout(a, block_name("attn_drop", i))
        if cfg.residual:
            a = ctx.add(x, a, block_name("attn_add", i))
        x = ctx.apply_norm(a, block_name("attn_norm", i))

        f = ctx.dense(cfg.width * cfg.ffn_multiplier, block_name("ffn_in", i), activation=cfg.activation)(x)
        f = ctx.activation(block_name("act", i))(f)
        f = ctx.dense(cfg.width, block_name("ffn_out", i))(f)
        f = ctx.apply_dropout(f, block_name("ffn_drop", i))
        if cfg.residual:
            f = ctx.add(x, f, block_name("ffn_add", i))
        x = ctx.apply_norm(f, block_name("ffn_norm", i))
    return keras.layers.GlobalAveragePooling1D(name="gap")(x)
