"""Property-based fuzzing of the spec loader: any input either loads or raises SpecError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlab.spec import Spec, SpecError

KEYS = ["name", "description", "extends", "data", "model", "train", "sweep", "expect", "report", "profiles",
        "dataset", "train_size", "label_noise", "depth", "width", "activation", "normalization", "residual",
        "dropout", "optimizer", "learning_rate", "epochs", "grid", "tune", "trials", "seeds", "model.depth",
        "train.learning_rate", "low", "high", "log", "choices", "kind", "metric", "better", "than", "quick",
        "family", "batch_size", "classes", "augment", "x", "0"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.sampled_from(["digits", "iris", "relu", "mlp", "adam", "batch", "val_loss", "compare",
                                     "base.yaml", "", "?"]), st.text(max_size=12))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)

SETTINGS = settings(max_examples=int(__import__("os").environ.get("NNLAB_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_text(text: str | bytes, overrides: list[str] = ()) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            spec = Spec.from_yaml(path, list(overrides))
        except SpecError as exc:
            message = str(exc)
            assert message and "\n" not in message
            assert message.startswith(("fuzz.yaml:", str(path))) or ":" in message.split(" ")[0]
        else:
            assert isinstance(spec, Spec)


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), documents, max_size=6))
def test_structured_documents(doc):
    load_text(yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    load_text(text.encode("utf-8", "replace").decode("utf-8"))


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data):
    load_text(data)


@SETTINGS
@given(st.lists(st.text(alphabet="abcdelmnoprstwy._=[]{}:,0123456789- ", max_size=30), max_size=4))
def test_arbitrary_overrides(overrides):
    load_text("name: f\ndata:\n  dataset: iris\nmodel:\n  depth: 2\n", overrides)
