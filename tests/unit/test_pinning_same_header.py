"""The infrastructure flows' canary_header and their validation_spec's, told one header as a listener rule tells them."""

from __future__ import annotations

import pytest

from flows.infra import InfraRefused, _pinned
from rollway.validation import ValidationSpec


def test_the_same_header_with_its_value_in_another_case_is_one_header():
    """An http-header condition matches values without regard to case (AWS: "The comparison strings
    are case insensitive"): a rule matching one matches the other, and the checks' own is taken.
    Compared case by case, the two were refused as different headers."""
    header, checks = _pinned("x-rollway-target: CANARY", ValidationSpec(canary_header="X-Rollway-Target: canary"))
    assert header == "X-Rollway-Target: canary" and checks


def test_another_value_is_another_header():
    with pytest.raises(InfraRefused, match="is not the header validation_spec's checks are pinned by"):
        _pinned("X-Rollway-Target: beta", ValidationSpec(canary_header="X-Rollway-Target: canary"))
