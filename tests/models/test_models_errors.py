"""What build_model refuses, through the public entry point."""

from __future__ import annotations

import pytest
from models_testkit import INFOS, cfg

from nnlab.errors import SpecError
from nnlab.models import build_model


def test_heads_must_divide_width():
    with pytest.raises(SpecError, match="must divide model.width") as err:
        build_model(cfg(family="transformer", width=6, heads=4), INFOS["sequence"])
    assert err.value.key == "model.heads"
    assert "6" in str(err.value) and "4" in str(err.value)


@pytest.mark.parametrize("info_name", ["tabular", "sequence"])
def test_augmentation_needs_image_data(info_name):
    with pytest.raises(SpecError, match="image data only") as err:
        build_model(cfg(family="mlp"), INFOS[info_name], augment=["noise"])
    assert err.value.key == "data.augment"


def test_unknown_augmentation():
    with pytest.raises(SpecError, match="expected one of") as err:
        build_model(cfg(family="cnn"), INFOS["image"], augment=["shfit"])
    assert err.value.key == "data.augment"
    assert "did you mean 'shift'" in str(err.value)


def test_augmentation_listed_twice():
    with pytest.raises(SpecError, match="once") as err:
        build_model(cfg(family="cnn"), INFOS["image"], augment=["flip", "flip"])
    assert err.value.key == "data.augment"


@pytest.mark.parametrize("family", ["cnn", "rnn", "transformer"])
def test_family_refuses_tabular_data(family):
    with pytest.raises(SpecError, match="tabular") as err:
        build_model(cfg(family=family), INFOS["tabular"])
    assert err.value.key == "model.family"


def test_unknown_family():
    with pytest.raises(SpecError, match="unknown model family"):
        build_model(cfg(family="resnet"), INFOS["image"])
