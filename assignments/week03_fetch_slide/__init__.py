"""Week 3 (optional): Fetch Slide by imitation — what the student's kernel may see of this assignment.

``drivers.py`` (the scripted controller, its demonstrations, behaviour cloning with the student's loss, success rates
on FetchSlide-v4) → ``checks.py``. The reference and the named mistakes are grader-only, in
``source/week03_fetch_slide/``.
"""

from gradekit.checks import Registry

from . import checks

REGISTRY = Registry(checks={
    "imitation_loss_exact": checks.ImitationLossExact,
    "imitation_clones_controller": checks.ImitationClonesController,
})
