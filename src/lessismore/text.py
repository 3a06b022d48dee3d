"""Text helpers shared by ingest, validate and curate: where a text quotes code.

Fenced (```...```) and inline (`...`) code quote things on purpose: an HTML tag in a question about HTML, an entity
such as `&amp;`, an identifier such as `me` or `i`. The rules that read prose (entity decoding, leftover-markup
checks, first-person style) leave code alone, and all of them find it with this one pattern.
"""

from __future__ import annotations

import re

# one capturing group, so that CODE_SPANS.split(text) alternates prose (even parts) and code (odd parts)
CODE_SPANS = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)


def prose(text: str) -> str:
    """The text with each code span replaced by a blank.

    >>> prose("Use `<span>` or ```\\n<div>\\n``` in HTML")
    'Use   or   in HTML'
    """
    return CODE_SPANS.sub(" ", text)
