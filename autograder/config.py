"""course.toml -> frozen, validated settings. Errors name the key that is wrong.

course.toml is the one place for the course id, the assignments, points, thresholds, seeds and time limits; nbgrader's
settings are derived from it in ``release.py``. Each assignment names its content package (``content``: a folder such
as ``assignments/<id>/`` whose ``REGISTRY`` lists its checks); each check's table is validated by the check's own
dataclass, so a key that does not exist, or a value out of range, is reported with its full dotted name.
"""

from __future__ import annotations

import ast
import datetime
import importlib
import importlib.util
import sys
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "course.toml"
KIT = ROOT / "gradekit"  # the generic kernel-side kit: protocol, check machinery, public checks


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Limits:
    """What the notebook's process may use while it is graded (course.toml: ``[assignments.<id>.limits]``)."""

    cell_seconds: float  # wall clock for one graded cell, or for one check with all its seeds
    submission_seconds: float  # wall clock for the whole submission
    memory_mb: float  # address space of the notebook's process (RLIMIT_AS)
    cpu_seconds: float  # CPU time of one notebook process (RLIMIT_CPU); a restarted one starts afresh
    output_kb: float  # printed text kept per cell; the rest is dropped


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    notebook: str
    setup_cell: str
    limits: Limits
    graded_cells: tuple[str, ...]
    checks: tuple = field(default=())
    root: Path = ROOT
    content: Path = ROOT  # the assignment's content package (a folder with ``REGISTRY``)
    packages: tuple[Path, ...] = ()  # ``content`` and the sibling content packages it imports (``content_packages``)
    registry: object = field(default=None, compare=False, hash=False)  # the content package's REGISTRY
    student_packages: tuple[str, ...] = ()  # what the release's requirements.txt pins for students
    min_isolation: str = "none"  # the lowest sandbox level (sandbox.LEVELS) under which student code may run
    questions: tuple = field(default=())  # (grade_id, points) of the manually graded answer cells, in table order
    due: datetime.datetime | None = None  # the deadline (offset date-time); submissions after it are late
    late_penalty_per_day: float = 0.0  # fraction of the assignment's points lost per started day late
    late_penalty_max: float = 1.0  # the most a late submission loses, as a fraction of the points

    @property
    def points(self) -> float:
        """Every point of the assignment: the checks' and the manually graded questions'."""
        return sum(c.points for c in self.checks) + sum(points for _, points in self.questions)

    @property
    def source(self) -> Path:
        """The reference: the instructor's notebook (grader-only)."""
        return self.root / "source" / self.id / self.notebook

    @property
    def kernel_packages(self) -> dict[str, Path]:
        """What the student's kernel may import, by import name: the kit and the content packages this assignment's
        content imports (itself first). Nothing grader-only."""
        return {"gradekit": KIT} | {p.name: p for p in self.packages}

    @property
    def mistake_files(self) -> list[Path]:
        """The grader-only named mistakes behind the hints: ``source/<id>/mistakes.py`` of this assignment and of
        each assignment whose content this one reuses (its checks' mistakes live with the checks' owner)."""
        owners = [self.id] + [p.name for p in self.packages[1:]]
        return [f for f in (self.root / "source" / owner / "mistakes.py" for owner in owners) if f.exists()]

    @property
    def release(self) -> Path:
        return self.root / "release" / self.id / self.notebook

    def check(self, name: str):
        return next(c for c in self.checks if c.name == name)


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    root: Path
    assignments: dict[str, Assignment]

    def assignment(self, assignment_id: str | None = None) -> Assignment:
        if assignment_id is None:
            return next(iter(self.assignments.values()))
        if assignment_id not in self.assignments:
            raise ConfigError(f"no assignment {assignment_id!r} in course.toml; known: {', '.join(self.assignments)}")
        return self.assignments[assignment_id]


def _take(table: dict, key: str, kind: type, where: str):
    if key not in table:
        raise ConfigError(f"{where}.{key} is missing")
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is float and value <= 0):
        raise ConfigError(f"{where}.{key} must be a {'positive number' if kind is float else kind.__name__}, "
                          f"got {value!r}")
    return value


ISOLATION_LEVELS = ("none", "fallback", "full")  # as sandbox.LEVELS, lowest first


def _isolation(table: dict, where: str, default: str) -> str:
    """An optional ``min_isolation`` key: one of the sandbox's levels."""
    value = table.get("min_isolation", default)
    if value not in ISOLATION_LEVELS:
        raise ConfigError(f"{where}.min_isolation must be one of {', '.join(repr(v) for v in ISOLATION_LEVELS)}, "
                          f"got {value!r}")
    return value


def fraction(table: dict, key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{where}.{key} must be a fraction of the points between 0 and 1, got {value!r}")
    return float(value)


def late_rule(table: dict, where: str) -> dict:
    """``due``, ``late_penalty_per_day`` and ``late_penalty_max`` of an assignment (all optional)."""
    due = table.get("due")
    if due is not None and not (isinstance(due, datetime.datetime) and due.tzinfo is not None):
        raise ConfigError(f"{where}.due must be a date and time with its UTC offset (e.g. 2026-03-20T23:59:00+10:00),"
                          f" got {due!r}")
    rule = {"due": due, "late_penalty_per_day": fraction(table, "late_penalty_per_day", 0.0, where),
            "late_penalty_max": fraction(table, "late_penalty_max", 1.0, where)}
    if due is None and "late_penalty_per_day" in table:
        raise ConfigError(f"{where}.late_penalty_per_day needs {where}.due")
    return rule


def questions(table: dict, where: str) -> tuple:
    """``[<where>.questions.<grade_id>]`` tables: the points of each manually graded answer cell."""
    found = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}.{name} must be a table with `points`")
        unknown = sorted(set(entry) - {"points"})
        if unknown:
            raise ConfigError(f"{where}.{name}.{unknown[0]} is not a setting of a question; known: points")
        found.append((name, _take(entry, "points", float, f"{where}.{name}")))
    return tuple(found)


def build_check(cls, name: str, table: dict, where: str):
    """Instantiate a check dataclass from its table; unknown, missing or invalid keys are named."""
    known = {f.name for f in fields(cls)} - {"name"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]} is not a setting of this check; known: {', '.join(sorted(known))}")
    missing = sorted(f.name for f in fields(cls) if f.name not in table and f.name != "name"
                     and f.default is MISSING and f.default_factory is MISSING)
    if missing:
        raise ConfigError(f"{where}.{missing[0]} is missing")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(name=name, **values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def content_packages(folder: Path) -> list[Path]:
    """The content package at ``folder`` and the sibling packages it imports, transitively (read from its source,
    not by running it): what its kernel and its release need."""
    found, todo = [], [folder]
    while todo:
        package = todo.pop(0)
        if package in found:
            continue
        found.append(package)
        for module in sorted(package.glob("*.py")):
            for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
                for name in names:
                    sibling = package.parent / name.split(".")[0]
                    if sibling != package and (sibling / "__init__.py").exists():
                        todo.append(sibling)
    return found


def load_registry(folder: Path, where: str):
    """Import the content package at ``folder`` (its parent goes on ``sys.path``) and return its ``REGISTRY``."""
    from gradekit.checks import Registry  # lazy: numpy, 0.13 s, which --help and course.toml's reading do without

    if not (folder / "__init__.py").is_file():
        raise ConfigError(f"{where} must name a content package (a folder with __init__.py), got {folder}")
    if str(folder.parent) not in sys.path:
        sys.path.append(str(folder.parent))
    spec = importlib.util.find_spec(folder.name)
    if spec is None or Path(spec.origin).parent.resolve() != folder.resolve():
        raise ConfigError(f"{where}: the package name {folder.name!r} is already taken by {spec and spec.origin}")
    registry = getattr(importlib.import_module(folder.name), "REGISTRY", None)
    if not isinstance(registry, Registry):
        raise ConfigError(f"{where}: {folder.name}/__init__.py defines no REGISTRY (a gradekit.checks.Registry)")
    return registry


def load(path: Path | str = DEFAULT_CONFIG) -> Course:
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    course = data.get("course", {})
    course_isolation = _isolation(course, "course", "none")
    assignments = {}
    for assignment_id, table in data.get("assignments", {}).items():
        where = f"assignments.{assignment_id}"
        content = path.parent / _take(table, "content", str, where)
        registry = load_registry(content, f"{where}.content")
        known = registry.checks
        checks_table = table.get("checks", {})
        unknown = sorted(set(checks_table) - set(known))
        if unknown:
            raise ConfigError(f"{where}.checks.{unknown[0]} is not a check of {content.name}'s REGISTRY; known: "
                              f"{', '.join(known)}")
        checks = tuple(build_check(known[name], name, checks_table[name], f"{where}.checks.{name}")
                       for name in checks_table)
        graded = tuple(_take(table, "graded_cells", list, where))
        for check in checks:
            for fn in check.functions:
                if fn not in graded:
                    raise ConfigError(f"{where}.checks.{check.name} needs `{fn}`, which is not in graded_cells")
        assignments[assignment_id] = Assignment(
            id=assignment_id,
            title=_take(table, "title", str, where),
            notebook=_take(table, "notebook", str, where),
            setup_cell=_take(table, "setup_cell", str, where),
            limits=Limits(**{f.name: _take(table.get("limits", {}), f.name, float, f"{where}.limits")
                             for f in fields(Limits)}),
            graded_cells=graded,
            checks=checks,
            root=path.parent,
            content=content,
            packages=tuple(content_packages(content)),
            registry=registry,
            student_packages=tuple(_take(table, "student_packages", list, where)),
            min_isolation=_isolation(table, where, course_isolation),
            questions=questions(table.get("questions", {}), f"{where}.questions"),
            **late_rule(table, where),
        )
    if not assignments:
        raise ConfigError(f"{path}: no [assignments.<id>] table")
    return Course(id=_take(course, "id", str, "course"), title=_take(course, "title", str, "course"),
                  root=path.parent, assignments=assignments)
