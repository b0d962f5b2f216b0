"""Escaping text the report did not write (policy names, titles, notes, cells) for Markdown.

Run directories are user data: a policy named ``bp<script>`` or ``x | y`` must land in
``report.md`` as that text, not as HTML, a link, an image, emphasis or a broken table.

>>> md_escape("bp<script>alert(1)</script>")
'bp&lt;script&gt;alert(1)&lt;/script&gt;'
>>> md_escape("a | b *c* [x](y) ![i](j)")
'a \\\\| b \\\\*c\\\\* \\\\[x\\\\](y) !\\\\[i\\\\](j)'
>>> md_block("# not a heading\\nnor this")
'\\\\# not a heading nor this'
>>> md_code("runs/a`b")
'``runs/a`b``'
"""

from __future__ import annotations

import re
from typing import Any

_INLINE = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+[.)])")


def md_escape(value: Any) -> str:
    """`value` as inline Markdown text: HTML characters as entities, Markdown punctuation
    backslash-escaped, line breaks as spaces (a cell or a note stays one line);
    a number like ``-1.5`` left as it is."""
    text = "" if value is None else str(value)
    text = " ".join(text.splitlines())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _INLINE.sub(r"\\\1", text)


def md_block(value: Any) -> str:
    """`md_escape` for text that starts a line: a leading heading, list or rule marker is
    escaped too."""
    return _LINE_START.sub(r"\1\\\2", md_escape(value))


def md_code(value: Any) -> str:
    """`value` as a Markdown code span (shown verbatim): fenced by more backticks than it
    holds in a row, on one line."""
    text = " ".join(("" if value is None else str(value)).splitlines())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
