"""Quality filters: pure functions of one Example that return (keep, reason).

Sits in curate/, first step after validate. The rules are LIMA's (Zhou et al. 2023, section 2.1): a response of
1,200-4,096 characters and, for Stack Exchange, a top answer scored >= 10 that uses no first person and does not
refer to other answers. `lima_checks` binds the params to them; `apply_filters` runs a list of checks and stops at
the first that says drop. A new rule is one more function with the same shape plus an entry in REASONS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from lessismore.records import Example
from lessismore.text import prose

if TYPE_CHECKING:
    from lessismore.config import Curate, Source, SourceRules

Check = Callable[[Example], tuple[bool, str]]
KEEP = (True, "ok")

# reason code -> the human sentence the quarantine detail carries (what was wrong, and what to do about it)
REASONS = {
    "response_too_short": "the response is shorter than its format's window in curate.response_chars (or its "
    "source's rules.min_response_chars); lower it to keep such answers",
    "response_too_long": "the response is longer than its format's window in curate.response_chars (or its "
    "source's rules.max_response_chars); raise it to keep such answers",
    "low_score": "the Stack Exchange answer scored below curate.se_min_score (or has no score in meta)",
    "first_person": "the Stack Exchange answer speaks in the first person (LIMA keeps impersonal answers only)",
    "refers_to_other_answers": "the Stack Exchange answer refers to other answers, which the model will not see",
    "duplicate_prompt": "the same prompt (after normalising case and whitespace) is already kept; edit or drop one",
    "contaminated": "the text contains a dev/test prompt's words (n-gram overlap): training on it would leak the "
    "evaluation; remove the example or the prompt",
    "near_duplicate": "a near-copy (MinHash Jaccard >= curate.near_dup.threshold) of an example already kept",
    "other_source": "curate.variant is single_source and this example is from another source",
    "over_quota": "its source filled its ingest.sources[].quota; raise it to keep more",
    "over_budget": "curate.budget was spent; raise it to keep more",
    # the variants that select by model-based scores (curate/scored.py; the detail gives the numbers)
    "score_below_cut": "its combined score is below curate.scores.cut; lower the cut or change the weights",
    "ifd_above_max": "its IFD is at or above curate.scores.ifd_max: the prompt does not help predict the answer",
    "unscored": "a scorer gave no readable score (the rater's reply named no digit 1-6), so it is never taken",
    "too_close": "too close in meaning to an example already taken (cosine distance under curate.scores."
    "min_distance); lower it to keep more alike examples",
    "not_scored": "not in the seeded sample that was scored (curate.scores.per_pick per place); raise it",
}

_QUOTED = re.compile(r'"[^"\n]{0,200}"|“[^”\n]{0,200}”')  # a quoted sentence ("My bike was stolen.") is an example
# the roman numeral I after a noun that numbers things: "Type I error", "Phase I trial", "World War I", "Louis I"
_NUMERAL_I = re.compile(
    r"\b(?:Type|Phase|Part|Chapter|Class|Category|Stage|Level|Grade|Schedule|Volume|Vol\.|Book|Act|Article|Section"
    r"|Appendix|Title|Round|Tier|War|Henry|Louis|Charles|James|Elizabeth|George|Edward|William|Napoleon|Paul)\s+I\b"
)
# "I" as a word (not the I of I/O, I.e. or AI), and my / me in any position in a sentence
_FIRST_PERSON = re.compile(r"(?<![\w/.'’-])I(?![\w/]|\.\w|-\w)|\b[Mm](?:y|e)\b")
_OTHER_ANSWERS = re.compile(
    r"(?i)\bas (?:mentioned|said|stated|noted|pointed out) (?:above|below|before|earlier|in (?:an?|the) other)"
    r"|\b(?:the|an|some|these|those) other answers?\b|\b(?:previous|accepted|above|earlier) answers?\b"
    r"|\banswers? (?:above|below)\b|\bas others? (?:have |has )?(?:said|mentioned|noted|pointed out|suggested)"
    r"|/a/\d+|/answers?/\d+|/questions/\d+/[^\s)#]*#\d+"  # links to a specific answer on a Stack Exchange site
)


def is_stackexchange(example: Example) -> bool:
    return example.meta.get("format") == "stackexchange_xml"


def response_length(example: Example, min_chars: int, max_chars: int | None) -> tuple[bool, str]:
    """LIMA: 1,200-4,096 characters in the (last) assistant turn; whitespace at the ends is not counted. A max of
    None: no upper bound."""
    n = len(example.response.strip())
    if n < min_chars:
        return False, "response_too_short"
    return (False, "response_too_long") if max_chars is not None and n > max_chars else KEEP


def se_score(example: Example, min_score: int) -> tuple[bool, str]:
    """Stack Exchange only: the top answer's score (meta "score") must be >= min_score; other sources pass."""
    if not is_stackexchange(example):
        return KEEP
    score = example.meta.get("score")
    return KEEP if isinstance(score, int | float) and score >= min_score else (False, "low_score")


def se_first_person(example: Example) -> tuple[bool, str]:
    """Stack Exchange only: no I, I'm, my or me as words in the answer's own prose (not in code, not in quotes)."""
    if not is_stackexchange(example):
        return KEEP
    text = _NUMERAL_I.sub(" ", _QUOTED.sub(" ", prose(example.response)))
    return (False, "first_person") if _FIRST_PERSON.search(text) else KEEP


def se_other_answers(example: Example) -> tuple[bool, str]:
    """Stack Exchange only: no "as mentioned above", "the other answer", "as others have said", /a/<id> links."""
    if not is_stackexchange(example):
        return KEEP
    return (False, "refers_to_other_answers") if _OTHER_ANSWERS.search(prose(example.response)) else KEEP


def lima_checks(min_response_chars: int, max_response_chars: int | None, se_min_score: int) -> list[Check]:
    """The LIMA rules with their params bound, cheapest first."""
    return Rules(False, min_response_chars, max_response_chars, se_min_score, stackexchange=True).checks()


@dataclass(frozen=True)
class Rules:
    """The selection rules one train source's examples go through: LIMA's, with the values of the source's format
    and its own, or none at all for a source whose rules people chose (`curated`).

    No window (min 0, max None) means no length rule; the score and style rules are Stack Exchange's alone.
    """

    curated: bool
    min_response_chars: int = 0
    max_response_chars: int | None = None  # None: no upper bound
    se_min_score: int = 0
    stackexchange: bool = False  # a Stack Exchange source: the score and style rules apply

    def checks(self) -> list[Check]:
        if self.curated:
            return []
        out: list[Check] = []
        if self.min_response_chars > 0 or self.max_response_chars is not None:
            out.append(partial(response_length, min_chars=self.min_response_chars, max_chars=self.max_response_chars))
        if self.stackexchange:
            # other answers before first person: an answer that cites another usually also says "I"
            out += [partial(se_score, min_score=self.se_min_score), se_other_answers, se_first_person]
        return out

    def describe(self) -> str:
        """What the funnel and the dataset card say applied to the source.

        >>> Rules(True).describe()
        'curated: chosen by people, no selection rule (validation, dedup, decontamination only)'
        >>> Rules(False, 200, 4096, 10, stackexchange=True).describe()
        'lima: response 200-4096 chars; Stack Exchange: score >= 10, impersonal, no reference to other answers'
        >>> Rules(False).describe(), Rules(False, 0, 8192).describe(), Rules(False, 200).describe()
        ('lima: no length window', 'lima: response 0-8192 chars', 'lima: response >= 200 chars')
        """
        if self.curated:
            return "curated: chosen by people, no selection rule (validation, dedup, decontamination only)"
        lo, hi = self.min_response_chars, self.max_response_chars
        text = "lima: " + (
            f"response {lo}-{hi} chars" if hi is not None else f"response >= {lo} chars" if lo else "no length window"
        )
        if self.stackexchange:
            text += f"; Stack Exchange: score >= {self.se_min_score}, impersonal, no reference to other answers"
        return text


def apply_filters(example: Example, checks: Sequence[Check]) -> tuple[bool, str]:
    """Run `checks` in order; the first that drops decides the reason. (True, "ok") when all keep."""
    for check in checks:
        keep, reason = check(example)
        if not keep:
            return False, reason
    return KEEP


def source_rules(spec: Curate, sources: Sequence[Source]) -> dict[str, Rules]:
    """Each train source's selection rules: its format's (curate.response_chars, and Stack Exchange's score and
    style rules), with the source's own `rules` over them, or none at all for a `curated: true` source."""
    return {
        s.name: format_rules(spec, s.format, s.rules, curated=bool(s.curated)) for s in sources if s.split == "train"
    }


def format_rules(spec: Curate, fmt: str, own: SourceRules | None = None, *, curated: bool = False) -> Rules:
    """The rules for one source of format `fmt`: the format's length window (none when curate.response_chars leaves
    the format out), the score rule for Stack Exchange, and any value the source sets itself (`own`)."""
    lo, hi = spec.response_chars.get(fmt) or (0, None)
    mine = {k: v for k, v in (vars(own) if own else {}).items() if v is not None}  # the keys the source sets
    return Rules(
        curated=curated,
        min_response_chars=mine.get("min_response_chars", lo),
        max_response_chars=mine.get("max_response_chars", hi),
        se_min_score=mine.get("se_min_score", spec.se_min_score),
        stackexchange=fmt == "stackexchange_xml",
    )
