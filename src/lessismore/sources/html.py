"""HTML -> markdown for Stack Exchange post bodies (LIMA: strip HTML except code blocks and lists), and HTML
entities decoded once in the text formats.

`html_to_markdown` is used by sources/stackexchange.py. markdownify (on BeautifulSoup) does the conversion:
<pre><code> becomes a fenced ``` block, <ul>/<ol> become markdown lists, emphasis and links stay readable. Images
are dropped: their alt text on Stack Exchange is almost always "enter image description here".
"""

from __future__ import annotations

import html
import re
from functools import cache

from lessismore.text import CODE_SPANS

_BLANK_RUNS = re.compile(r"[ \t]*\n(?:[ \t]*\n)+")  # two or more line breaks with only blanks between
_FENCED = re.compile(r"(```.*?```)", re.DOTALL)  # code is left exactly as written
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
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


def decode_entities(text: str) -> tuple[str, int]:
    """(text with its HTML entities decoded once, how many were decoded), code spans left as written.

    Scraped instruction sets carry entities where the page had a character (LIMA's train set: `&quot;hobbit&quot;`,
    `&amp;`); they mean that character, so ingest decodes them instead of validate dropping the row. Once only: a
    double-encoded `&amp;lt;` becomes the `&lt;` its author wrote. Inside code an entity may be the point (a
    question about HTML), so code is left alone. Only complete entities (with their `;`) are decoded.

    >>> decode_entities("A &quot;hobbit&quot; &amp; a `&amp;` in code; AT&T &amp;lt;")
    ('A "hobbit" & a `&amp;` in code; AT&T &lt;', 4)
    >>> decode_entities("no entities & no problem")
    ('no entities & no problem', 0)
    """
    if "&" not in text:
        return text, 0
    parts, count = CODE_SPANS.split(text), 0
    for i in range(0, len(parts), 2):  # even parts are prose
        found = _ENTITY.findall(parts[i])
        if found:
            decoded = _ENTITY.sub(lambda m: html.unescape(m.group(0)), parts[i])
            count += sum(html.unescape(e) != e for e in found)
            parts[i] = decoded
    return "".join(parts), count
