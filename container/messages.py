"""Exceptions as one line, for failure files, logs and error bodies."""

import re


def first_line(text):
    return (str(text).strip().splitlines() or [""])[0]


def describe(error):
    """An exception in one line: its type and the first line of its message."""
    return f"{type(error).__name__}: {first_line(error)}"


def without_prefix(text):
    """The first line of ``text`` less a leading ``[file:line]`` tag, as gloo and NCCL write."""
    return re.sub(r"^\[[^\]]*\]\s*", "", first_line(text))
