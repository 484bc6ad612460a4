"""Warnings for the user: one line on stderr, each said once per process (Python's ``warnings`` would add a
source file and line number that mean nothing to a user)."""

from __future__ import annotations

import sys

_said: set[str] = set()


def warn(message: str) -> None:
    if message not in _said:
        _said.add(message)
        sys.stderr.write(f"overspec: warning: {message}\n")
