"""Progress over a long input (many recordings): a bar redrawn in place on a terminal, a line every few seconds
in a log, nothing for an input of one item. It goes to stderr, so a table printed on stdout stays clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO

LOG_EVERY_S = 5.0  # how often a non-interactive log gets a progress line


class Progress:
    def __init__(self, total: int, what: str, stream: TextIO | None = None, every_s: float = LOG_EVERY_S):
        self.total, self.what, self.done = total, what, 0
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.interactive = self.stream.isatty()
        self.last = time.monotonic()

    def step(self, name: str) -> None:
        """One more item done (`name`, e.g. its file)."""
        self.done += 1
        if self.total <= 1:
            return
        now = time.monotonic()
        finished = self.done == self.total
        if self.interactive:
            bar = "#" * (20 * self.done // self.total)
            end = "\n" if finished else ""
            self.stream.write(f"\r[{bar:<20}] {self.done}/{self.total} {self.what}: {name[-40:]:<40}{end}")
        elif finished or now - self.last >= self.every_s:
            self.stream.write(f"{self.done}/{self.total} {self.what} ({name})\n")
            self.last = now
        self.stream.flush()
