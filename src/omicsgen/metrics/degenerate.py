"""Settings that a small dataset turns into something else, said rather than hidden."""

from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def degenerate_settings(n_features: int, settings: Mapping[str, tuple[int | None, str]], unit: str = "genes") -> list[str]:
    """One warning (also logged) per setting whose count reaches the number of features.

    ``settings`` maps a parameter name to (its value, what it then amounts to), e.g.
    ``{"scgen.evaluation.n_degs": (100, "the top-DEG scores are all-gene scores")}``.
    """
    warnings = [
        f"{name}={value} ≥ {n_features} {unit}: {consequence}"
        for name, (value, consequence) in settings.items()
        if value is not None and int(value) >= n_features
    ]
    for warning in warnings:
        logger.warning(warning)
    return warnings
