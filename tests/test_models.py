"""LoadedModel: the check every predicted offset passes on its way out."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.errors import ModelError
from kmtalk_cli.models import LoadedModel
from kmtalk_cli.validate import MAX_OFFSET_M


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 2 * MAX_OFFSET_M, -2 * MAX_OFFSET_M])
def test_offsets_that_are_not_finite_or_out_of_reach_never_leave_the_model(bad: float) -> None:
    model = LoadedModel(model=None, info={}, path=None)  # the check needs no network
    offsets = np.random.default_rng(0).normal(0, 0.003, (40, 30)).astype(np.float32)
    assert model._checked(offsets) is offsets
    offsets[17, 5] = bad
    with pytest.raises(ModelError, match="NaN or infinite|far beyond"):
        model._checked(offsets)
