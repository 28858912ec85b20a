"""The parts of the class report that tell the teaching staff what to re-teach and who to look at.

- **Named mistakes**: per check, how many students got each hint ("Likely mistake: ..." in a failed check's message,
  from the known mistakes of ``mistakes.py``), most frequent first.
- **Students**: every student of the roster (nbgrader's gradebook) and every submission: score, late penalty, a link
  to their feedback page; students on the roster who submitted nothing are marked missing.
- **Reflection answers**: each question's answers, extracted from the submissions (results.json ``extra_data.answers``),
  to read side by side before grading them in formgrader.

All of it comes from the results.json files; the page stays self-contained apart from the links to the feedback pages,
which are relative, so the report works wherever the results folder is copied.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from autograder.results import AUTOGRADER_ERROR

HINT = re.compile(r"Likely mistake: (.+?)\.?\s*$", re.MULTILINE)


def mistakes(rows: list[tuple[str, dict]], assignment) -> dict[str, Counter]:
    """check name -> Counter of hints: each student counted once per hint and check."""
    names = {check.title: check.name for check in assignment.checks}
    found: dict[str, Counter] = {}
    for _, result in rows:
        for test in result.get("tests", []):
            if test.get("status") != "failed" or test["name"] == AUTOGRADER_ERROR:
                continue
            hints = set(HINT.findall(test.get("output", "")))
            found.setdefault(names.get(test["name"], test["name"]), Counter()).update(hints)
    return {name: counter for name, counter in found.items() if counter}


def sections(out: Path, assignment, rows: list[tuple[str, dict]], roster: list[str] = ()) -> str:
    from autograder.feedback import text

    parts = []
    named = mistakes(rows, assignment)
    order = [check.name for check in assignment.checks]
    body = "".join(
        f"<tr><td>{text(name)}</td><td>{text(hint)}</td><td class='num'>{count}</td></tr>"
        for name in sorted(named, key=lambda n: order.index(n) if n in order else len(order))
        for hint, count in named[name].most_common())
    parts.append("<h2>Named mistakes</h2><p>How many students got each hint of a failed check: the known mistakes to "
                 "re-teach.</p>" + (f"<table><tr><th>check</th><th>likely mistake</th><th class='num'>students</th>"
                                    f"</tr>{body}</table>" if body else "<p>None.</p>"))
    graded = dict(rows)
    lines = []
    for student in sorted(set(graded) | set(roster)):
        result = graded.get(student)
        if result is None:
            lines.append(f"<tr><td>{text(student)}</td><td>missing: no submission</td><td></td><td></td><td></td></tr>")
            continue
        error = any(t["name"] == AUTOGRADER_ERROR for t in result.get("tests", []))
        late = result.get("extra_data", {}).get("late") or {}
        flag = (f"{late['days_late']} day(s) late, −{late['penalty']:g}" if late.get("late") else "")
        page = out / student / assignment.id / "feedback.html"
        link = f"<a href='{text(page.relative_to(out).as_posix())}'>feedback</a>" if page.exists() else ""
        lines.append(f"<tr><td>{text(student)}</td><td>{'autograder error' if error else 'graded'}</td>"
                     f"<td class='num'>{result['score']:g}</td><td>{text(flag)}</td><td>{link}</td></tr>")
    parts.append("<h2>Students</h2><table><tr><th>student</th><th>status</th><th class='num'>score</th><th>late</th>"
                 f"<th>feedback page</th></tr>{''.join(lines)}</table>")
    if assignment.questions:
        blocks = []
        for question, points in assignment.questions:
            given = [(s, r.get("extra_data", {}).get("answers", {}).get(question)) for s, r in rows]
            answered = [(s, a) for s, a in given if a]
            items = "".join(f"<tr><td>{text(s)}</td><td><pre>{text(a)}</pre></td></tr>" for s, a in answered)
            blocks.append(f"<h3>{text(question)} ({points:g} point(s), graded by a person)</h3><p>{len(answered)} of "
                          f"{len(given)} submissions answered.</p>" +
                          (f"<table><tr><th>student</th><th>answer</th></tr>{items}</table>" if items else ""))
        parts.append("<h2>Reflection answers</h2><p>Grade them in nbgrader's formgrader (they are pending there as "
                     "manual grades).</p>" + "".join(blocks))
    return "".join(parts)
