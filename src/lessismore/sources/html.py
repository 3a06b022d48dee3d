"""HTML -> markdown for Stack Exchange post bodies (LIMA: strip HTML except code blocks and lists).

Used by sources/stackexchange.py. markdownify (on BeautifulSoup) does the conversion: <pre><code> becomes a
fenced ``` block, <ul>/<ol> become markdown lists, emphasis and links stay readable. Images are dropped: their
alt text on Stack Exchange is almost always "enter image description here".
"""

from __future__ import annotations

import re
from functools import cache

_BLANK_RUNS = re.compile(r"[ \t]*\n(?:[ \t]*\n)+")  # two or more line breaks with only blanks between
_FENCED = re.compile(r"(```.*?```)", re.DOTALL)  # code is left exactly as written
_OPTIONS = {
    "heading_style": "ATX",  # "## Heading", not underlined
    "bullets": "-",
    "code_language": "",
    "strip": ["img"],
    # Bodies are full of LaTeX ($a_1 * b$) and identifiers (snake_case); escaping them would corrupt the text
    "escape_underscores": False,
    "escape_asterisks": False,
    "escape_misc": False,
}


def html_to_markdown(html: str) -> str:
    """Convert one post body to markdown; blank-line runs are collapsed and the ends stripped.

    >>> html_to_markdown("<p>Try:</p><pre><code>ls -la\\n</code></pre><ul><li>one</li><li>two</li></ul>")
    'Try:\\n\\n```\\nls -la\\n```\\n\\n- one\\n- two'
    """
    if not html or not html.strip():
        return ""
    parts = _FENCED.split(_converter().convert(html))
    # odd parts are fenced code blocks: keep them; tidy the prose between them
    return "".join(p if i % 2 else _BLANK_RUNS.sub("\n\n", p) for i, p in enumerate(parts)).strip()


@cache
def _converter():  # one converter for all bodies: building one per call costs as much as a short conversion
    from markdownify import MarkdownConverter  # lazy: bs4 is only needed when a Stack Exchange source is read

    return MarkdownConverter(**_OPTIONS)
