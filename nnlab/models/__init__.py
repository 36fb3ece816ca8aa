"""Model families: a validated ``model`` spec section + data facts -> an uncompiled Keras model.

Importing this package never imports TensorFlow or Keras; builders import Keras when
called. One private module per family (``_mlp``, ``_cnn``, ``_rnn``, ``_transformer``)
registers itself in :data:`FAMILIES`; ``_blocks`` holds the shared pieces.

Naming contract (diagnostics rely on it), for block i written with two digits:

- ``hidden_XX``: the block's principal weight layer (Dense, Conv1D/Conv2D, the recurrent
  layer, or MultiHeadAttention); its first weight is a kernel.
- ``act_XX``: the block's elementwise activation as a separate ``Activation`` layer (for
  the transformer, the feed-forward activation). Recurrent blocks have none: the
  activation lives inside the cell.
- ``proj_XX``: a linear, bias-free projection on a residual skip path whose width differs.
- ``head``: the output layer — logits for classification, linear units for regression.

Registry metadata: ``FAMILIES.meta(name)`` has ``kinds`` (data kinds accepted),
``options`` (the family-specific ``model`` keys it reads) and ``act_layers`` (whether
its blocks have ``act_XX`` layers); ``ACTIVATIONS.meta(name)`` has ``saturating``,
``rectifier`` and ``auto_initializer``.

Residual blocks in every family compute ``skip + dropout(block(x))``: the add comes
after the block's dropout. A saved model loads with :func:`load_model` (or
``keras.models.load_model`` after :func:`custom_objects` has registered nnlab's layers).
"""

from nnlab.models import _cnn, _mlp, _rnn, _transformer  # noqa: F401  (register the families)
from nnlab.models._base import FAMILIES, build_model, count_params, custom_objects, load_model
from nnlab.models._blocks import (
    ACTIVATIONS,
    AUGMENTATIONS,
    CELLS,
    INITIALIZERS,
    NORMALIZATIONS,
    derive_seed,
    resolve_initializer,
)
from nnlab.models._cnn import DOWNSAMPLE_RULES

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATIONS",
    "CELLS",
    "DOWNSAMPLE_RULES",
    "FAMILIES",
    "INITIALIZERS",
    "NORMALIZATIONS",
    "build_model",
    "count_params",
    "custom_objects",
    "derive_seed",
    "load_model",
    "resolve_initializer",
]
