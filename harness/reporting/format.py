"""Numbers as people read them, in the terminal and in HTML pages: one SI formatter, one fixed-point one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

MISSING = "—"  # an unknown figure: never shown as 0


def format_quantity(value: float | None, unit: str = "", missing: str = MISSING) -> str:
    """3 significant digits with an SI suffix (12.3G); ``missing`` for an unknown value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return missing
    for scale, suffix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}{unit}"
    return f"{value:.3g}{unit}"


def format_fixed(value: float | None, digits: int = 3) -> str:
    """A fixed number of decimals; ``—`` for an unknown value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def format_forecast(forecast: Mapping[str, Any]) -> str:
    """A forecast (``k``, ``coverage``, ``low``, ``high``, ``method``, ``confidence``) as one line; one without
    a point estimate (too few successes for a law) as the bound the samples support."""
    k, low, high = forecast["k"], forecast["low"], forecast["high"]
    percent = f"{forecast['confidence']:.0%}"
    if forecast["coverage"] is None:
        return f"coverage@{k} is at most {high:.3f} ({percent} interval [{low:.3f}, {high:.3f}] from the samples alone)"
    return f"coverage@{k} = {forecast['coverage']:.3f} [{low:.3f}, {high:.3f}] ({percent}, {forecast['method']})"
