"""What Gradescope's setup.sh (``templates/setup.sh``) checks before it installs and before it grades: that the
student's kernel can run this Python at the isolation level it will get there, else a message that names the fix.

    PYTHONPATH=SOURCE PYTHON -m autograder.setup_check [--import MODULE]... [--config course.toml]

run by the Python to check (``sys.executable``; a venv's python too), with the standard library only, so that setup.sh
can run it on the interpreter it found before anything is installed. Exit 0 with one line saying what holds; exit 1
with the message on stderr.

The level is the sandbox's own probe (``sandbox.probe``). Below level ``full`` with a root grader (Gradescope: no user
namespaces in its container, setup.sh and run_autograder run as root), the kernel is level ``fallback``: it runs as an
unprivileged uid of its own, which must be able to enter every folder down to the interpreter and its packages and
read them. An interpreter under a 0700 home such as /root/.pyenv cannot be run by that uid: every submission would be
an autograder error ("Permission denied"), and the sandbox would report level ``none``. At level ``full``, bwrap runs
the kernel as root's mapped uid where its own uid cannot run the interpreter, so nothing more is needed. With
``--config``, the level must also reach course.toml's ``min_isolation``.
"""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from autograder import sandbox


def blocking_folders(python: str) -> list[tuple[Path, int]]:
    """Folders that others may not enter (no ``o+x``; the kernel's uid has no group of the owner's) on the way to the
    interpreter as named, to the file it links to and to its prefixes, each with its mode; the first of each way."""
    probe = subprocess.run([python, "-c", "import sys, sysconfig; print(sys.prefix); print(sys.base_prefix); "
                                          "print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, timeout=60)
    ways = [Path(os.path.abspath(python)), Path(os.path.realpath(python)),
            *(Path(line) for line in probe.stdout.splitlines() if line.strip())]
    found: list[tuple[Path, int]] = []
    for way in ways:
        for folder in [*reversed(way.parents), way]:
            try:
                info = os.stat(folder)
            except OSError:
                break
            if stat.S_ISDIR(info.st_mode) and not info.st_mode & stat.S_IXOTH:
                if folder not in [f for f, _ in found]:
                    found.append((folder, stat.S_IMODE(info.st_mode)))
                break
    return found


def run_as(uid: int, python: str, modules: list[str]) -> subprocess.CompletedProcess:
    """``python -c "import MODULES"`` as ``uid`` (its own gid, no groups), as the sandbox starts a fallback kernel."""
    def drop() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    code = "import sys" + "".join(f", {m}" for m in modules)
    return subprocess.run([python, "-c", code], preexec_fn=drop, cwd="/", env={"PATH": os.defpath},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def uid_problem(python: str, modules: list[str], uid: int, why: str = "no user namespaces for bubblewrap") -> str:
    """'' if ``uid`` can run ``python`` and import ``modules``; else what stops it and how to fix that."""
    try:
        proc = run_as(uid, python, modules)
    except OSError as exc:
        proc = subprocess.CompletedProcess([], 1, "", str(exc))
    if proc.returncode == 0:
        return ""
    lead = (f"the student's kernel will run at isolation level 'fallback' (here: {why}; on Gradescope: no user "
            f"namespaces), as an unprivileged uid of its own ({uid}), and that uid cannot run {python}"
            + (f" with {', '.join(modules)}" if modules else ""))
    blocked = blocking_folders(python)
    if blocked:
        where = "; ".join(f"{folder} is mode {mode:04o}, so other users cannot enter it" for folder, mode in blocked)
        those = "that folder" if len(blocked) == 1 else "those folders"
        fix = (f"Fix: use a Python outside {those} (leave AUTOGRADER_SETUP_PYTHON unset, so that setup.sh installs "
               "CPython under $AUTOGRADER_ROOT/python, or name one such as /usr/bin/python3.11), or let other users "
               f"enter {'it' if len(blocked) == 1 else 'them'}: "
               + "; ".join(f"chmod o+x {folder}" for folder, _ in blocked) + ".")
        return f"{lead}: {where}. {fix}"
    error = (proc.stderr.strip().splitlines() or ["no error message"])[-1]
    return (f"{lead} ({error}). Fix: make the interpreter, its standard library and the venv readable and the folders "
            f"down to them enterable by other users (chmod -R o+rX on them), or use a Python installed where they are.")


def level_problem(found, minimum: str) -> str:
    """'' if ``found`` reaches ``minimum``; else the level, why, and what would raise it (never "run as root" to
    root)."""
    if found.at_least(minimum):
        return ""
    fixes = ["install bubblewrap and allow unprivileged user namespaces for level 'full'"]
    if os.geteuid() != 0:
        fixes.append("run setup.sh and run_autograder as root (Gradescope does) for level 'fallback'")
    return (f"student code would run at isolation level {found.level!r} here ({found.reason or 'forced'}), below "
            f"course.toml's min_isolation = {minimum!r}, so every submission would be refused. Fix: "
            + ", or ".join(fixes) + ".")


def min_isolation(config: Path, assignment: str | None) -> str:
    """course.toml's ``min_isolation``: the assignment's, else the course's, else "none" (as ``config.load`` does)."""
    data = tomllib.loads(Path(config).read_text())
    course = data.get("course", {}).get("min_isolation", "none")
    return data.get("assignments", {}).get(assignment or "", {}).get("min_isolation", course)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.setup_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--import", dest="modules", action="append", default=[],
                        help="a module the kernel's uid must be able to import with this Python (repeatable)")
    parser.add_argument("--config", type=Path, help="course.toml: the level must reach its min_isolation")
    parser.add_argument("--assignment", help="with --config: the assignment whose min_isolation counts")
    args = parser.parse_args(argv)
    python = sys.executable
    found = sandbox.probe()
    if os.geteuid() == 0 and found.level != "full":
        uid = sandbox.fallback_uid()
        problem = uid_problem(python, args.modules, uid, found.reason.split("; ")[0] or "forced")
        if problem:
            print(f"setup.sh: {problem}", file=sys.stderr)
            return 1
        print(f"setup.sh: an unprivileged uid ({uid}, as the kernel's at level 'fallback') can run {python}"
              + (f" and import {', '.join(args.modules)}" if args.modules else ""))
    if args.config:
        problem = level_problem(found, min_isolation(args.config, args.assignment))
        if problem:
            print(f"setup.sh: {problem}", file=sys.stderr)
            return 1
        print(f"setup.sh: student code will run at isolation level {found.level!r}"
              + (f" ({found.reason})" if found.reason else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
