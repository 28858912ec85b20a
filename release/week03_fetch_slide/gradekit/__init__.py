"""The grading kit: what the student's kernel may import, and what a release ships for the public checks.

- ``protocol``: the request/answer protocol the grader runs in the student's kernel (``serve``);
- ``drivers``: building blocks of an assignment's drivers (seeding, fixed networks, contract errors);
- ``checks``: check machinery (cases, verdicts, hints) and the ``Registry`` an assignment's content package defines;
- ``plots``: the learning-curve figure; ``public``: the student's public checks.

Nothing here is grader-only: no reference solution, no named mistake, no course configuration. For students:
``from gradekit import check; check("pg_loss")`` in the notebook, ``python -m gradekit NOTEBOOK`` in a terminal.
"""


def check(part: str | None = None) -> bool:
    """Run the public checks of ``part`` (a graded function or check name; None: all) on this notebook's graded
    cells, each on its own as the grader runs it. True if all passed."""
    import inspect

    from gradekit import public

    return public.check(part, inspect.currentframe().f_back.f_globals)
