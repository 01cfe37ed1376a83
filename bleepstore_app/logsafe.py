"""Client input in log lines, with control characters escaped.

A key, bucket, method or User-Agent may hold any character: a raw newline would
start a forged log line, an ESC would drive the terminal of whoever reads the log.
Escaped here once, cheaply: the access log calls this for every request, and the
common value (no control character, no space) is returned as it came.
"""
from __future__ import annotations

import re

# C0, DEL, C1, the Unicode line and paragraph separators, and the bidirectional
# overrides (they reorder what a terminal shows).
_CONTROL_CLASS = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
_IN_QUOTES = re.compile(f'[{_CONTROL_CLASS}"\\\\]')  # in quotes, '"' and the escape character too
# Anything but printable ASCII without space, '"', '=' and '\\': the value needs quotes.
needs_quotes = re.compile(r'[^!#-<>-\[\]-~]').search
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}


def _escape_char(match: re.Match) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with control characters as backslash escapes (for free text such
    as an error message: a backslash already there stays as it is)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape_char, text)


def quoted(value: str) -> str:
    """``value`` in double quotes, '"' and control characters escaped."""
    return '"' + _IN_QUOTES.sub(_escape_char, value) + '"'


def text_field(value: str) -> str:
    """A value for a ``name=value`` text log line: bare when it is plain ASCII
    without spaces, else quoted."""
    return value if value and needs_quotes(value) is None else quoted(value)
