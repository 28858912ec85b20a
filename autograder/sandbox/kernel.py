"""The kernel's process at every level: its environment (an allow-list, nothing of the grader's) and its
launcher."""

from __future__ import annotations

import os
import sys

from autograder.sandbox.isolation import THREAD_VARS

def kernel_env(home: str, pythonpath: str) -> dict:
    """The kernel's whole environment: an allow-list, nothing of the grader's."""
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]))
    env = {var: "1" for var in THREAD_VARS}
    env.update(PATH=path, HOME=home, TMPDIR=f"{home}" if home.startswith("/tmp") else f"{home}/tmp",
               LANG="C.UTF-8", LC_ALL="C.UTF-8", USER="student", LOGNAME="student", MPLBACKEND="Agg",
               PYTHONHASHSEED="0", PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1",
               IPYTHONDIR=f"{home}/.ipython", MPLCONFIGDIR=f"{home}/.mpl", PYTHONNOUSERSITE="1")
    return env


def launcher(nproc: int | None) -> list[str]:
    """``python -m ipykernel_launcher``, with RLIMIT_NPROC set from inside (in the sandbox's user namespace it counts
    the sandbox's processes only; set before, it would count all of the grader's user's processes)."""
    if nproc is None:
        return ["-m", "ipykernel_launcher"]
    code = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NPROC, ({nproc}, {nproc})); "
            "sys.argv[0] = 'ipykernel_launcher'; runpy.run_module('ipykernel_launcher', run_name='__main__', "
            "alter_sys=True)")
    return ["-c", code]
