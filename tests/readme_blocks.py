"""The command blocks of README.md and docs/*.md, read and run as written (for tests/test_readme.py).

Every ```bash block is preceded by a marker, an HTML comment the rendered page does not show:

    <!-- test: skip (why) -->                      not run: `make`, which CI itself runs
    <!-- test: id=NAME, cwd=PLACE, OPTION=WORD (why), ... -->

``id`` names the test of tests/test_readme.py that runs the block; ``cwd`` the placeholder of the folder it runs from
(REPO: a scratch copy of the repository). Options that pick out lines name a word of the line (``dry=calibrate``),
or ``*`` for every line, and say why in parentheses:

- ``dry=WORD``: a heavy command (minutes to hours): its program parses the line's arguments with its own argparse
  parser and stops there (``README_DRY``, see SITECUSTOMIZE), so a wrong flag or subcommand still fails.
- ``not-run=WORD``: not a command as written (the README says what it stands for); the test does its part.
- ``status=WORD:CODE``: the exit status the line must end with (otherwise 0).
- ``venv=active``: the venv's ``bin/`` comes first on PATH, as in a shell where it is active.

The block runs in one bash process, line after line, so ``cd`` and ``source`` carry over as in the reader's shell.
Placeholders (upper-case names such as SUBMISSION.ipynb, COURSE_DIR, or ``…``) become the paths the test gives; an
optional argument in brackets, ``[SUBMISSION.ipynb]``, is run with the argument. Nothing else of a line is changed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```", re.S | re.M)
OPTION = re.compile(r"(?P<key>[\w-]+)=(?P<value>[^,(]+?)\s*(?:\((?P<why>[^)]*)\))?\s*(?:,|$)")
LINE_OPTIONS = ("dry", "not-run", "status")

# Loaded by every Python started for a `dry` line (its folder goes first on PYTHONPATH): the program's first
# top-level parse_args parses the line's arguments, prints them and exits 0; an argparse error exits 2 as usual.
SITECUSTOMIZE = '''\
import os
if os.environ.get("README_DRY"):
    import argparse, sys
    _parse_args = argparse.ArgumentParser.parse_args
    def _parse_then_stop(self, args=None, namespace=None):
        parsed = _parse_args(self, args, namespace)
        print(f"dry run, arguments parsed by {self.prog}: {vars(parsed)}", flush=True)
        sys.exit(0)
    argparse.ArgumentParser.parse_args = _parse_then_stop
'''


@dataclass
class Block:
    page: Path
    line: int  # of the fence in the page
    lang: str
    code: str
    marker: str | None  # the marker's text, None if the block has none
    options: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # key -> [(value, why)]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def skip(self) -> bool:
        return self.marker is not None and self.marker.startswith("skip")

    @property
    def id(self) -> str | None:
        return self.option("id")

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, [(default, "")])[0][0]

    def commands(self) -> list[str]:
        """The block's command lines, continuation lines joined; blank and comment-only lines left out."""
        joined = re.sub(r"\\\n\s*", " ", self.code)
        return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]

    def lines_for(self, key: str) -> dict[int, str]:
        """Line index -> the option's value for the lines an option picks out (each word must pick exactly one)."""
        picked = {}
        commands = self.commands()
        for value, _ in self.options.get(key, []):
            word, _, arg = value.partition(":")
            hits = range(len(commands)) if word == "*" else [i for i, c in enumerate(commands) if word in c]
            if word != "*" and len(hits) != 1:
                raise ValueError(f"{self.where}: {key}={value} picks {len(hits)} lines, not 1")
            picked |= dict.fromkeys(hits, arg)
        return picked


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, with its marker if the line before its fence is one."""
    text = page.read_text()
    found = []
    for fence in FENCE.finditer(text):
        before = text[:fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = re.fullmatch(r"<!--\s*test:\s*(.*?)\s*-->", before.strip())
        block = Block(page, text.count("\n", 0, fence.start()) + 1, fence["lang"], fence["code"],
                      marker[1] if marker else None)
        if block.marker and not block.skip:
            for option in OPTION.finditer(block.marker):
                block.options.setdefault(option["key"], []).append((option["value"].strip(), option["why"] or ""))
        found.append(block)
    return found


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def block(block_id: str) -> Block:
    (found,) = [b for b in all_blocks() if b.id == block_id]
    return found


def substitute(command: str, places: dict[str, str]) -> str:
    """Placeholders -> paths (whole words only; ``…`` as it is); ``[ARG]`` (an optional argument) -> ``ARG``."""
    command = re.sub(r"\[([^\]\s]+)\]", r"\1", command)
    for name in sorted(places, key=len, reverse=True):
        value = shlex.quote(places[name]) if places[name] else ""
        command = re.sub(rf"(?<![\w/]){re.escape(name)}(?!\w)", lambda _: value, command)
    return re.sub(r" +", " ", command).strip()


def script(block: Block, places: dict[str, str], dry_path: Path) -> str:
    """The bash script of a block: each line as written (placeholders filled), its exit status checked."""
    dry, not_run, status = (block.lines_for(k) for k in LINE_OPTIONS)
    out = [f"cd {shlex.quote(places[block.option('cwd', 'REPO')])}"]
    for i, command in enumerate(block.commands()):
        if i in not_run:
            continue
        line = substitute(command, places)
        if i in dry:
            path = shlex.quote(str(dry_path))
            line = f"( export README_DRY=1 PYTHONPATH={path}${{PYTHONPATH:+:$PYTHONPATH}}\n{line}\n)"
        want = int(status.get(i) or 0)
        out += [f"echo \"README> [$SECONDS s]\" {shlex.quote(command)} >&2", line,
                f"s=$?; [ $s = {want} ] || {{ echo {shlex.quote(f'README line failed: {command}')} "
                f"\"(exit $s, expected {want})\" >&2; exit 97; }}"]
    return "\n".join([*out, 'echo "README> [$SECONDS s] done" >&2']) + "\n"


def run(block: Block, places: dict[str, str], tmp: Path, venv: Path, timeout: float = 1800):
    """Run a block in bash (placeholders -> ``places``); the result carries every line's output."""
    dry_path = tmp / "readme-dry"
    dry_path.mkdir(exist_ok=True)
    (dry_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if block.option("venv") == "active":
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", script(block, places, dry_path)], env=env, capture_output=True, text=True,
                          timeout=timeout)
