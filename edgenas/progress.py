"""Progress bars that stay readable when stderr is a log file.

On a terminal a bar redraws itself in place ten times a second.  Redirected (``nohup edgenas train
... > train.log 2>&1``, a batch scheduler, a detached GPU job) the same redraws pile up as one
carriage-return-separated line that grows by megabytes a day and that ``tail`` shows as one blur.
There each bar writes whole lines instead, at most one every ``LOG_INTERVAL_S`` seconds (its
first and last always).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm import tqdm

__all__ = ["LOG_INTERVAL_S", "bar"]

LOG_INTERVAL_S = 30.0


class _Lines:
    """A file that turns tqdm's in-place redraws into whole lines."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file

    def write(self, s: str) -> None:
        text = s.replace("\r", "").replace("\x1b[A", "").rstrip()
        if text:  # tqdm's clearing writes blanks: nothing to log
            self.file.write(text + "\n")

    def flush(self) -> None:
        self.file.flush()


class _LogBar(tqdm):
    """A bar for a log: a new postfix or description shows with the next due line, not as a line of its own."""

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = False, **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_description(self, desc: str | None = None, refresh: bool = False) -> None:
        super().set_description(desc, refresh=False)


def _is_terminal(file: IO[str]) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def bar(iterable: Iterable[Any] | None = None, *, file: IO[str] | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` on stderr (or ``file``): in place on a terminal, whole lines elsewhere."""
    file = sys.stderr if file is None else file
    if _is_terminal(file):
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, file=file, **kwargs)
    kwargs["leave"] = True  # a log keeps each bar's last line (a terminal may erase a finished bar)
    kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    kwargs.setdefault("maxinterval", max(LOG_INTERVAL_S, kwargs["mininterval"]))  # tqdm's monitor would redraw every 10 s
    return _LogBar(iterable, file=_Lines(file), **kwargs)
