"""Folders a kernel's unprivileged uid cannot look up, bound for it by root in a mount namespace of bwrap's own
(``Stage``), and what runs between fork and exec of bwrap or a kernel (``enter``)."""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from pathlib import Path

from autograder.sandbox.uids import as_uid

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18


def _reachable(path: Path, uid: int) -> bool:
    """Whether a process of ``uid`` (no groups) can look up ``path``: every folder above it lets it search."""
    for folder in reversed(Path(path).parents):
        try:
            info = os.stat(folder)
        except OSError:
            return False
        if not info.st_mode & (0o100 if info.st_uid == uid else 0o001):
            return False
    return True


class Stage:
    """Folders a kernel's unprivileged uid cannot look up (an interpreter under root's 0700 home): bound, by root, in
    a mount namespace of bwrap's own, at ``<folder>/stage/<n>``, from where bwrap (as that uid) binds them at their
    own paths. Nothing changes in the host's mounts: the namespace goes with bwrap."""

    def __init__(self, folder: Path | None = None, uid: int | None = None):
        self.folder, self.uid = folder, uid
        self.pairs: list[tuple[str, str]] = []  # (host folder, staged path)

    def source(self, path: Path | str) -> str:
        """The path bwrap should bind ``path`` from."""
        if self.uid is None or _reachable(Path(path), self.uid):
            return str(path)
        for host, staged in self.pairs:
            if host == str(path):
                return staged
        staged = self.folder / "stage" / str(len(self.pairs))
        staged.mkdir(parents=True)
        os.chmod(staged.parent, 0o755)
        self.pairs.append((str(path), str(staged)))
        return str(staged)

    def mount(self) -> None:
        """In bwrap's process, as root, before the uid changes: its own mount namespace, the staged binds."""
        if not self.pairs:
            return
        if _libc.unshare(CLONE_NEWNS) != 0 or _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "a mount namespace for the kernel's staged folders")
        for host, staged in self.pairs:
            if _libc.mount(host.encode(), staged.encode(), None, MS_BIND | MS_REC, None) != 0:
                raise OSError(ctypes.get_errno(), f"binding {host} for the kernel's uid")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def enter(stage: Stage, cgroups, uid: int | None) -> None:
    """Between fork and exec of bwrap (or a kernel): staged binds, cgroups, then the unprivileged uid."""
    stage.mount()
    if cgroups is not None:
        cgroups.enter()
    if uid is not None:
        as_uid(uid)

