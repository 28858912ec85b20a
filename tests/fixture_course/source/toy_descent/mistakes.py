"""Named mistakes of the fixture assignment (grader-only, beside its reference notebook)."""

from toy_descent.checks import DescendExact

MISTAKES = {DescendExact: {"the sign is flipped: descent goes against the gradient": lambda x, g, lr: x + lr * g}}
