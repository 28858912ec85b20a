"""The grader's cache folder (one per uid, used only while nothing but the grader can change it: the reference's
learning curves, ``feedback.py``) and, in it, matplotlib's font list that every kernel reads."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from autograder.sandbox import bwrap
from autograder.sandbox.kernel import kernel_env

# Run by this interpreter in a kernel's environment (an empty home): matplotlib's font list, of the fonts a sandboxed
# kernel sees at the same paths (its own fonts; system fonts under the folders the sandbox binds, through no symlink),
# written under matplotlib's own name into the folder argv[1].
FONT_LIST_BUILDER = """
import os, sys
import matplotlib
from matplotlib import font_manager

data, roots = matplotlib.get_data_path(), sys.argv[2:]

def visible(path):
    return path.startswith(data + os.sep) or (
        os.path.realpath(path) == path and any(path.startswith(root + os.sep) for root in roots))

manager = font_manager.fontManager
manager.ttflist = [font for font in manager.ttflist if visible(font.fname)]
manager.afmlist = [font for font in manager.afmlist if visible(font.fname)]
font_manager.json_dump(manager, os.path.join(sys.argv[1], f"fontlist-v{font_manager.FontManager.__version__}.json"))
"""
_font_lists_lock = threading.Lock()


def font_lists() -> tuple[Path, ...]:
    """matplotlib's font list (``fontlist-v*.json``) for the kernels' MPLCONFIGDIR, so that a kernel's ``import
    matplotlib`` reads it instead of building it (a fifth of a second at every start): the grader's own, built once per
    machine and matplotlib (in ``grader_cache()``; the first kernel waits the ~0.6 s) by a
    subprocess of this interpreter, and used only while nothing but the grader's uid can change it: never a file a
    kernel wrote. Empty if matplotlib is not installed or the build failed: kernels then build their own, as without
    it. Once per process."""
    with _font_lists_lock:  # the kernels of one grading process start in threads of their own
        return _font_lists()


@functools.cache
def _font_lists() -> tuple[Path, ...]:
    spec = importlib.util.find_spec("matplotlib")  # not imported here: that takes half a second
    if spec is None or not spec.submodule_search_locations:
        return ()
    package = Path(next(iter(spec.submodule_search_locations)))
    dist = next(package.parent.glob("matplotlib-*.dist-info"), None)
    version = dist.name[len("matplotlib-"):-len(".dist-info")] if dist else "unknown"
    where = hashlib.sha256(str(package).encode()).hexdigest()[:12]  # another environment's matplotlib: its own list
    cache = grader_cache()
    if cache is None:
        return ()
    folder = cache / f"matplotlib-{version}-{where}"
    try:
        found = sorted(folder.glob("fontlist-v*.json")) if _grader_only(folder.parent, folder) else []
        if not found or not _grader_only(*found):  # (a list others could have changed is built again)
            found = _build_font_list(folder)
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(found) if _grader_only(*found) else ()


def _build_font_list(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder.parent, folder):  # readable by bwrap when it runs as the kernel's own uid
        if os.lstat(path).st_uid == os.geteuid():
            os.chmod(path, 0o755)
    if not _grader_only(folder.parent, folder):
        return []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as build:
        home, out = Path(build, "home"), Path(build, "out")
        for path in (home / "tmp", out):
            path.mkdir(parents=True)
        roots = ["/usr", *map(str, bwrap.python_folders())]  # what the sandbox binds at the same paths
        subprocess.run([sys.executable, "-c", FONT_LIST_BUILDER, str(out), *roots], env=kernel_env(str(home), ""),
                       cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60, check=True)
        for path in out.glob("fontlist-v*.json"):
            os.chmod(path, 0o644)
            os.replace(path, folder / path.name)
    return sorted(folder.glob("fontlist-v*.json"))


def grader_cache() -> Path | None:
    """The grader's cache folder (the reference's learning curves, matplotlib's font list): one per uid under the
    temporary folder, used only while nothing but this uid can change it (None otherwise: then nothing is cached). On
    a shared /tmp, another user's folder of the same name is never read, nor one planted for this uid."""
    folder = Path(tempfile.gettempdir()) / f"autograder-cache-{os.geteuid()}"
    try:
        folder.mkdir(mode=0o755, exist_ok=True)
    except OSError:
        return None
    return folder if _grader_only(folder) else None


def _grader_only(*paths: Path) -> bool:
    """Whether only the grader's uid can change each of ``paths``: its own, no symlink, not group or other writable."""
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode) or info.st_mode & 0o022:
            return False
    return True
