"""Regular expressions that ops write (scenario field formats) run on RE2: linear time whatever the pattern or the text.

Python's `re` backtracks, so a pattern such as `(a+)+$` takes exponential time on a long enough value. RE2 never
backtracks; the price is that it refuses backreferences and lookaround, which a definition is told when it is saved.
"""

from __future__ import annotations

from functools import lru_cache

import re2

MAX_PATTERN_LENGTH = 1000
MAX_SUBJECT_LENGTH = 20_000  # the longest text field a definition allows (long_text)


class UnsupportedPattern(ValueError):
    """The pattern is not a regular expression RE2 runs (syntax error, backreference, lookaround, too long)."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported to the person who wrote it, not to stderr
    options.max_mem = 8 << 20
    return options


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re2._Regexp:
    """Compile an ops-written pattern for RE2, or raise UnsupportedPattern saying why."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsupportedPattern(f"is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsupportedPattern(f"is not a valid regular expression ({reason}); patterns run on RE2, without backreferences or lookaround") from exc


def pattern_fullmatch(pattern: str, text: str) -> bool:
    """True when the whole text matches; text past MAX_SUBJECT_LENGTH never matches (and is never scanned)."""
    if len(text) > MAX_SUBJECT_LENGTH:
        return False
    return compile_pattern(pattern).fullmatch(text) is not None
