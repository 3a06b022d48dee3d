"""Stack Exchange data-dump Posts.xml -> one Example per answered question (its top answer).

Sits under sources/ (format "stackexchange_xml"; a glob such as se/*/Posts.xml reads one dump a site, the site
being each file's directory name, local or s3://). Two streaming passes keep memory flat on a multi-GB dump:
pass 1 keeps only integers (which answer is each question's top one); pass 2 holds a question's text only until
its top answer arrives (answers may come before or after their question). Rows are fed to expat's pull parser
(what ElementTree.iterparse runs on) one line at a time, as dumps write one <row/> a line, so a malformed row is
quarantined and the parse resumes on the next line.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any
from xml.parsers.expat import ErrorString

from lessismore.records import Dropped, Example, Prompt
from lessismore.sources.common import SourceFile, iter_lines
from lessismore.sources.html import html_to_markdown

QUESTION, ANSWER = "1", "2"  # PostTypeId; the others (tag wikis, nominations...) are not Q&A
_FIX = "check that the path points at an extracted data-dump Posts.xml (7z x site.stackexchange.com.7z)"


def read_stackexchange_xml(path: str, source: str, license: str, split: str) -> Iterator[Example | Prompt | Dropped]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="stackexchange_xml")
    index = _Index()
    for item in iter_rows(src):
        if isinstance(item, Dropped):
            yield item
            continue
        lineno, row = item
        problem = index.add(row)
        if problem:
            where = row["Id"] if row.get("Id", "").isdigit() else lineno
            detail = f"{src.path}:{lineno}: {problem[1]}"
            yield src.drop(problem[0], where, detail, {k: row.get(k) for k in ("Id", "PostTypeId")})
    yield from _join(src, index.top(), index.orphans())


class _Index:
    """Pass 1: per question, the accepted answer id and the highest-scoring answer ids (integers only)."""

    def __init__(self) -> None:
        self.accepted: dict[int, int | None] = {}  # question id -> AcceptedAnswerId
        self.best: dict[int, tuple[int, list[int]]] = {}  # question id -> (top score, answer ids with it)
        self.count: dict[int, int] = {}  # question id -> answers seen

    def add(self, row: dict[str, str]) -> tuple[str, str] | None:
        """Record one row; a row that cannot be used returns its (reason, detail)."""
        pid, kind = row.get("Id", ""), row.get("PostTypeId", "")
        if not pid.isdigit():
            return "malformed_xml", f"<row> without a numeric Id ({pid!r}); fix or delete that line"
        if kind == QUESTION:
            accepted = row.get("AcceptedAnswerId", "")
            self.accepted[int(pid)] = int(accepted) if accepted.isdigit() else None
        elif kind == ANSWER and row.get("ParentId", "").isdigit():
            parent, score = int(row["ParentId"]), _int(row.get("Score"))
            top, ids = self.best.get(parent, (score, []))
            if score >= top:
                self.best[parent] = (score, [*ids, int(pid)] if score == top else [int(pid)])
            self.count[parent] = self.count.get(parent, 0) + 1
        elif kind == ANSWER:
            return "malformed_xml", f"answer {pid} has no numeric ParentId; fix or delete that line"
        else:
            return (
                "not_qa",
                f"post {pid} has PostTypeId={kind!r}: not a question or an answer (tag wiki, nomination...)",
            )
        return None

    def orphans(self) -> set[int]:
        """The question ids that answers name and that are not in the file."""
        return {q for q in self.count if q not in self.accepted}

    def top(self) -> dict[int, tuple[int, int]]:
        """question id -> (top answer id, answers seen): highest Score; a tie goes to the accepted, else the first."""
        out = {}
        for qid, (_, ids) in self.best.items():
            if qid in self.accepted:
                out[qid] = (self.accepted[qid] if self.accepted[qid] in ids else ids[0], self.count[qid])
        return out


def _join(src: SourceFile, top: dict[int, tuple[int, int]], orphans: set[int]) -> Iterator[Example | Prompt | Dropped]:
    """Pass 2: pair each answered question with its top answer, emitting as soon as both halves were seen; an answer
    to a question the file lacks (`orphans`) is quarantined under its own Id and line."""
    wanted = {aid: qid for qid, (aid, _) in top.items()}
    questions: dict[int, dict[str, str]] = {}
    answers: dict[int, dict[str, str]] = {}
    for item in iter_rows(src):
        if isinstance(item, Dropped) or not item[1].get("Id", "").isdigit():
            continue  # already quarantined in pass 1
        lineno, row = item
        pid, kind = int(row["Id"]), row.get("PostTypeId")
        parent = row.get("ParentId", "")
        if kind == ANSWER and parent.isdigit() and int(parent) in orphans:
            detail = f"{src.path}:{lineno}: answer {pid} answers question {parent}, which is not in this file"
            yield src.drop("orphan_answer", pid, detail, {"Id": pid, "ParentId": int(parent)})
            continue
        if kind == QUESTION and pid not in top:
            title = row.get("Title", "")
            detail = f"{src.path}: question {pid} ({title!r}) has no answer in this file; nothing to learn from"
            yield src.drop("no_answer", pid, detail, {"question_id": pid, "title": title})
            continue
        if kind == QUESTION:
            questions[pid] = row
        elif kind == ANSWER and pid in wanted:
            answers[pid] = row
        else:
            continue
        qid = pid if kind == QUESTION else wanted[pid]
        aid, n_answers = top[qid]
        if qid in questions and aid in answers:
            yield _example(src, questions.pop(qid), answers.pop(aid), n_answers)


def _example(src: SourceFile, question: dict[str, str], answer: dict[str, str], n_answers: int) -> Example | Prompt:
    qid, aid = int(question["Id"]), int(answer["Id"])
    title, body = question.get("Title", "").strip(), html_to_markdown(question.get("Body", ""))
    meta: dict[str, Any] = {
        "site": PurePosixPath(src.path).parent.name,  # ".../stem/Posts.xml" -> "stem", local or s3://
        "score": _int(answer.get("Score")),
        "question_score": _int(question.get("Score")),
        "accepted": question.get("AcceptedAnswerId") == answer["Id"],
        "tags": parse_tags(question.get("Tags", "")),
        "title": title,
        "question_id": qid,
        "answer_id": aid,
        "n_answers": n_answers,  # answers present in this file (the dump's AnswerCount may count deleted ones)
    }
    prompt = f"{title}\n\n{body}" if body else title
    return src.record([prompt, html_to_markdown(answer.get("Body", ""))], f"{qid}/{aid}", meta)


def parse_tags(tags: str) -> list[str]:
    """Both dump encodings: "<a><b>" (older dumps) and "|a|b|" (newer ones).

    >>> parse_tags("<python><numpy>"), parse_tags("|python|numpy|"), parse_tags("")
    (['python', 'numpy'], ['python', 'numpy'], [])
    """
    if tags.startswith("<"):
        return re.findall(r"<([^<>]+)>", tags)
    return [t for t in tags.split("|") if t]


def _int(value: str | None) -> int:
    return int(value) if value and value.lstrip("-").isdigit() else 0


def iter_rows(src: SourceFile) -> Iterator[tuple[int, dict[str, str]] | Dropped]:
    """Yield (line, attributes) per <row/>; bad bytes, bad XML and a non-Posts file become Dropped entries."""
    parser, root = ET.XMLPullParser(events=("start", "end")), None
    for lineno, text, raw in iter_lines(src.path):
        if isinstance(text, UnicodeDecodeError):
            yield src.invalid_utf8(lineno, text, raw)
            continue
        try:
            parser.feed(raw)
            for event, elem in parser.read_events():
                if root is None and elem.tag != "posts":
                    yield src.drop("malformed_xml", lineno, f"{src.path}: root is <{elem.tag}>, not <posts>; {_FIX}")
                    return
                root = elem if root is None else root
                if event == "end" and elem.tag == "row":
                    yield lineno, dict(elem.attrib)
                    root.clear()  # forget parsed rows: memory stays flat whatever the file size
        except ET.ParseError as err:
            if root is None:  # nothing XML-shaped before the error: the whole file is something else
                yield _not_xml(src, err)
                return
            where, why = f"{src.path}:{lineno}:{err.position[1]}", ErrorString(err.code)
            yield src.drop(
                "malformed_xml",
                lineno,
                f"{where}: malformed <row> ({why}); fix or delete that line",
                {"raw": text[:2000]},
            )
            parser = ET.XMLPullParser(events=("start", "end"))  # a fresh parser resumes inside <posts>
            parser.feed(b"<posts>")
            root = next(elem for _, elem in parser.read_events())
    try:
        parser.close()
    except ET.ParseError as err:
        if root is None:
            yield _not_xml(src, err)
        else:
            detail = f"{src.path}: ends before </posts>: the file looks truncated, extract it again"
            yield src.drop("malformed_xml", "eof", detail)


def _not_xml(src: SourceFile, err: ET.ParseError) -> Dropped:
    line, col = err.position
    return src.drop("malformed_xml", line, f"{src.path}:{line}:{col}: not XML ({ErrorString(err.code)}); {_FIX}")
