"""The progress bar fit draws on a terminal or in a notebook (callbacks.Progress drives it):
tqdm's when tqdm is installed, else a plain one that never wraps."""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from typing import Any, Protocol


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (whose stderr is no terminal but shows a bar)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class Bar(Protocol):
    def update(self, rows: int, metrics: str) -> None: ...

    def close(self) -> None: ...


def make_bar(title: str, total: int) -> Bar:
    """tqdm's bar when tqdm is installed, else the plain one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm.auto warns in a notebook without ipywidgets, then works
            from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(title, total)
    return _TqdmBar(tqdm, title, total)


class _TqdmBar:
    """tqdm (terminal, or notebook widget): its width follows the terminal's; cleared when closed."""

    def __init__(self, tqdm: Any, title: str, total: int):
        self._bar = tqdm(total=total, desc=title, unit="", unit_scale=True, leave=False,
                         dynamic_ncols=True, file=sys.stderr,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                    "[ETA {remaining}, {rate_fmt}{postfix}]")  # tqdm puts ", " before a postfix

    def update(self, rows: int, metrics: str) -> None:
        # Drawn on every call: the calls already come a few times a second (one per C++ call),
        # and tqdm's own rate limit would skip every draw of an epoch shorter than its interval.
        self._bar.update(rows)
        self._bar.set_postfix_str(metrics, refresh=True)

    def close(self) -> None:
        self._bar.close()


_MAX_WIDTH = 1000  # columns: wider than any terminal


class _PlainBar:
    """``Epoch 1/20 [=====>    ] 12.8k/54.0k - ETA 3s - loss 0.51 - accuracy 0.82`` redrawn in
    place on stderr, never wider than the terminal (so it never wraps onto a new line)."""

    def __init__(self, title: str, total: int):
        self.title, self.total, self.done = title, total, 0
        self.start, self.shown = time.perf_counter(), False

    def update(self, rows: int, metrics: str) -> None:
        self.done += rows
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (self.total - self.done) / max(self.done, 1)
        # The last column would wrap on some terminals; COLUMNS=1000000000 must not build a GB line.
        width = min(shutil.get_terminal_size().columns, _MAX_WIDTH) - 1
        parts = [f"{si_prefixed(self.done)}/{si_prefixed(self.total)}", f"ETA {_duration(eta)}", metrics]
        while True:  # drop what fits least until a bar of 10 fits, then cut the text
            tail = " - ".join(parts)
            room = width - len(self.title) - len(tail) - 4
            if room >= 10 or len(parts) == 1:
                break
            parts.pop(0)
        cells = max(room, 0)
        filled = cells * self.done // max(self.total, 1)
        bar = f" [{'=' * filled}{'>' if filled < cells else ''}{' ' * (cells - filled - 1)}] " if cells else " "
        line = (self.title + bar + tail)[:width]
        sys.stderr.write("\r" + line + "\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")  # carriage return, erase the line
            sys.stderr.flush()


def _duration(seconds: float) -> str:
    """3.2 -> '3s'; 125 -> '2:05'."""
    seconds = int(round(seconds))
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}:{seconds % 60:02d}"


def si_prefixed(value: float) -> str:
    """12345.6 -> '12.3k'; 2.5e6 -> '2.50M'."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
