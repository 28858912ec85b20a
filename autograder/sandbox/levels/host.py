"""What the levels without bubblewrap share (``fallback``, ``none``): the kernel runs on the host, in the box's folder
(its home, its sockets, its view of the visible folders as symlinks), with the environment allow-list, and loads the
syscall filter itself before exec."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from autograder.sandbox.caches import font_lists
from autograder.sandbox.kernel import kernel_env, launcher
from autograder.sandbox.levels.base import Level


class OnTheHost(Level):

    def kernel_path(self, box, name: str) -> str:
        return str(Path(box.folder) / name)

    def client_path(self, box, name: str) -> str:
        return self.kernel_path(box, name)

    def home(self, box) -> str:
        return str(box.folder / "home")

    def launcher_nproc(self, box) -> int | None:
        """RLIMIT_NPROC the launcher sets from inside the kernel's process (None: none)."""
        raise NotImplementedError

    def command(self, box, extra_arguments: list[str]) -> list[str]:
        nproc = self.launcher_nproc(box)
        grading = box.folder / "grading"
        grading.mkdir(exist_ok=True)
        for name, path in box.visible.items():
            (grading / name).symlink_to(path)
        box.env = kernel_env(self.home(box), str(grading))
        home, mpl = Path(self.home(box)), Path(box.env["MPLCONFIGDIR"])
        owned = [home, home / "tmp", mpl]
        for path in owned:
            path.mkdir(exist_ok=True)
        for path in font_lists():  # matplotlib's font list: a copy of the grader's, the kernel's own to change
            try:
                shutil.copyfile(path, mpl / path.name)
                owned.append(mpl / path.name)
            except OSError:
                pass
        if box.uid is not None:
            for path in (*owned, box.connection_file):
                os.chown(path, box.uid, box.uid)
        return [sys.executable, *launcher(nproc), "-f", box.connection_file, *extra_arguments]

    def popen_kwargs(self, box) -> dict:
        return {"env": box.env, "cwd": str(box.folder)}
