"""A fixture assignment: ``descend(x, grad, lr)``, one step of gradient descent. Content only; no engine file names it."""

from gradekit.checks import Registry

from . import checks

REGISTRY = Registry(checks={"descend_exact": checks.DescendExact, "descent_converges": checks.DescentConverges})
