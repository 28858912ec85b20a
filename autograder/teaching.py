"""The parts of the class report that tell the teaching staff what to re-teach and who to look at.

- **Named mistakes**: per check, how many students got each named mistake (a failed check's ``mistake`` in
  results.json, from the known mistakes of ``mistakes.py``; never parsed out of the message), most frequent first.
- **Students**: every student of the roster (nbgrader's gradebook) and every submission: score, late penalty, a link
  to their feedback page; students on the roster who submitted nothing are marked missing.
- **Reflection answers**: each question's answers, extracted from the submissions (results.json ``extra_data.answers``),
  to read side by side before grading them in formgrader.

All of it comes from the results.json files; the page stays self-contained apart from the links to the feedback pages,
which are relative, so the report works wherever the results folder is copied.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from autograder.feedback import text
from autograder.results import Results


def mistakes(rows: list[tuple[str, dict]], assignment) -> dict[str, Counter]:
    """check id -> Counter of named mistakes (each failed check's ``mistake`` in results.json): each student counted
    once per mistake and check."""
    found: dict[str, Counter] = {}
    for _, result in rows:
        for check_id, check in Results.of(result).checks.items():
            if not check.passed and check.mistake:
                found.setdefault(check_id, Counter()).update([check.mistake])
    return found


def sections(out: Path, assignment, rows: list[tuple[str, dict]], roster: list[str] = ()) -> str:
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
        result = Results.of(result)
        error = result.autograder_error is not None
        late = result.late
        flag = (f"{late.get('days_late')} day(s) late, −{result.penalty:g}" if late.get("late") else "")
        page = out / student / assignment.id / "feedback.html"
        link = f"<a href='{text(page.relative_to(out).as_posix())}'>feedback</a>" if page.exists() else ""
        lines.append(f"<tr><td>{text(student)}</td><td>{'autograder error' if error else 'graded'}</td>"
                     f"<td class='num'>{result.score:g}</td><td>{text(flag)}</td><td>{link}</td></tr>")
    parts.append("<h2>Students</h2><table><tr><th>student</th><th>status</th><th class='num'>score</th><th>late</th>"
                 f"<th>feedback page</th></tr>{''.join(lines)}</table>")
    if assignment.questions:
        blocks = []
        for question, points in assignment.questions:
            given = [(s, Results.of(r).answers.get(question)) for s, r in rows]
            answered = [(s, a) for s, a in given if a]
            items = "".join(f"<tr><td>{text(s)}</td><td><pre>{text(a)}</pre></td></tr>" for s, a in answered)
            blocks.append(f"<h3>{text(question)} ({points:g} point(s), graded by a person)</h3><p>{len(answered)} of "
                          f"{len(given)} submissions answered.</p>" +
                          (f"<table><tr><th>student</th><th>answer</th></tr>{items}</table>" if items else ""))
        parts.append("<h2>Reflection answers</h2><p>Grade them in nbgrader's formgrader (they are pending there as "
                     "manual grades).</p>" + "".join(blocks))
    return "".join(parts)
