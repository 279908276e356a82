"""`data.split_seed` fixes the split while the recipe's seed (the model's) varies."""

from __future__ import annotations

import numpy as np
import pytest

from scaledl.data import DataConfig
from scaledl.errors import RecipeError
from scaledl.modalities import load_splits
from scaledl.recipe import validate_recipe


def test_the_split_seed_overrides_the_recipe_seed_and_is_recorded() -> None:
    fixed = load_splits(DataConfig(source="digits", split_seed=3), seed=0)
    same = load_splits(DataConfig(source="digits"), seed=3)
    other = load_splits(DataConfig(source="digits"), seed=0)
    assert fixed.split_seed == 3
    np.testing.assert_array_equal(fixed.test.y, same.test.y)
    np.testing.assert_array_equal(fixed.val.x, same.val.x)
    assert not np.array_equal(fixed.val.x, other.val.x)


@pytest.mark.parametrize("bad", [-1, 2**32, "zero", 1.5, [0]])
def test_a_split_seed_that_is_not_a_32_bit_count_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(RecipeError, match="split_seed"):
        validate_recipe({"name": "x", "data": {"source": "digits", "split_seed": bad}})
