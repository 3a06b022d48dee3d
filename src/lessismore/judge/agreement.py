"""Agreement between two raters (LLM judges, humans) on the items both labelled: LIMA's tie-discounted accuracy and
Cohen's kappa.

Sits beside judge/stats.py and feeds metrics/judge.json: it compares the LLM judges with each other now, and with
the human judgments of the annotate/ page later (#7). A rater is a mapping item key -> label, e.g. (prompt_id,
baseline) -> win / tie / loss from the candidate's point of view (`outcome_labels`). Items only one rater labelled,
and items either rater could not label ("invalid", or any label outside `labels`), are counted and left out: they
are never scored as disagreement.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

from lessismore.judge.outcome import PairOutcome

LABELS = ("win", "tie", "loss")


def tie_discounted_agreement(x: str, y: str) -> float:
    """LIMA's agreement between two annotators: 1 if equal, 0.5 if exactly one says tie, else 0.

    >>> tie_discounted_agreement("a", "a"), tie_discounted_agreement("a", "tie"), tie_discounted_agreement("a", "b")
    (1.0, 0.5, 0.0)
    """
    if x == y:
        return 1.0
    return 0.5 if "tie" in (x, y) else 0.0


def cohen_kappa(x: Sequence[str], y: Sequence[str], labels: Sequence[str]) -> tuple[float | None, str | None]:
    """Cohen's kappa of two raters' labels on the same items (scikit-learn's), or None and the reason it is undefined.

    >>> cohen_kappa(["win", "win", "tie", "loss"], ["win", "tie", "tie", "win"], LABELS)  # p_o 2/4, p_e 0.375
    (0.2, None)
    >>> cohen_kappa(["win"] * 5, ["win"] * 5, LABELS)[0] is None, cohen_kappa([], [], LABELS)[0] is None
    (True, True)
    """
    if not x:
        return None, "no shared valid items"
    if len(set(x)) == 1 and set(x) == set(y):  # sklearn answers nan (and warns) when chance agreement is 1
        return None, "expected agreement is 1 (both raters gave every item one and the same label): kappa undefined"
    from sklearn.metrics import cohen_kappa_score

    return round(float(cohen_kappa_score(x, y, labels=list(labels))), 6), None


def agreement(x: Mapping[Hashable, str], y: Mapping[Hashable, str], labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """How far two raters agree on the items both labelled validly.

    n: shared valid items; shared: items both labelled (valid or not); invalid: shared items left out because either
    label is outside `labels`; only_x / only_y: items one rater lacks; tie_discounted: LIMA's mean (1 equal, 0.5
    exactly one says tie, 0 otherwise; with no "tie" label it is plain accuracy); exact: share of equal labels;
    kappa: Cohen's kappa, with kappa_note saying why it is None; confusion: counts, rows x's label, columns y's.

    >>> x = {1: "win", 2: "win", 3: "tie", 4: "loss", 5: "invalid", 6: "win"}
    >>> y = {1: "win", 2: "tie", 3: "tie", 4: "win", 5: "win", 7: "loss"}
    >>> a = agreement(x, y)
    >>> a["n"], a["shared"], a["invalid"], a["only_x"], a["only_y"]
    (4, 5, 1, 1, 1)
    >>> a["tie_discounted"], a["exact"], a["kappa"], a["confusion"]  # (1 + 0.5 + 1 + 0) / 4
    (0.625, 0.5, 0.2, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])
    >>> agreement({1: "win"}, {1: "win"})["kappa_note"].startswith("expected agreement is 1")
    True
    """
    shared = [k for k in x if k in y]
    valid = [(x[k], y[k]) for k in shared if x[k] in labels and y[k] in labels]
    confusion = [[0] * len(labels) for _ in labels]
    for a, b in valid:
        confusion[labels.index(a)][labels.index(b)] += 1
    kappa, note = cohen_kappa([a for a, _ in valid], [b for _, b in valid], labels)
    n = len(valid)
    return {
        "n": n,
        "shared": len(shared),
        "invalid": len(shared) - n,
        "only_x": len(x) - len(shared),
        "only_y": len(y) - len(shared),
        "tie_discounted": round(sum(tie_discounted_agreement(a, b) for a, b in valid) / n, 6) if n else None,
        "exact": round(sum(a == b for a, b in valid) / n, 6) if n else None,
        "kappa": kappa,
        "kappa_note": note,
        "labels": list(labels),
        "confusion": confusion,
    }


def pairwise_agreement(
    raters: Mapping[str, Mapping[Hashable, str]], labels: Sequence[str] = LABELS
) -> dict[str, dict[str, Any]]:
    """`agreement` for every pair of raters, keyed "x~y" in the raters' order.

    >>> out = pairwise_agreement({"j1": {1: "win"}, "j2": {1: "tie"}, "human": {1: "loss"}})
    >>> {k: v["tie_discounted"] for k, v in out.items()}
    {'j1~j2': 0.5, 'j1~human': 0.0, 'j2~human': 0.5}
    """
    return {f"{a}~{b}": agreement(raters[a], raters[b], labels) for a, b in combinations(raters, 2)}


def outcome_labels(pairs: Iterable[PairOutcome]) -> dict[tuple[str, str], str]:
    """One judge's pair outcomes as a rater: (prompt_id, baseline) -> win / tie / loss / invalid."""
    return {(p.prompt_id, p.baseline): p.outcome for p in pairs}
