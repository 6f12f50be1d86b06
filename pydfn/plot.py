"""Figures with matplotlib (the optional ``plot`` extra: ``pip install "pydfn[plot]"``)."""

from __future__ import annotations

from typing import Any


def _pyplot() -> Any:
    """matplotlib.pyplot with a non-interactive backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            'pydfn.plot needs matplotlib: install it with  pip install "pydfn[plot]"  '
            "(or  pip install matplotlib)") from exc
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")  # figures are returned and saved, never shown in a window
    import matplotlib.pyplot as plt
    return plt
