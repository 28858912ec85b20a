"""The student's kernel in a default-deny sandbox: it sees only what it needs, and nothing it starts outlives it.

Three levels, probed once per grading process and named in results.json (``extra_data.isolation``):

``full`` (bubblewrap, ``bwrap``; works for root and for ordinary users where user namespaces are allowed)
    An empty tmpfs root, made read-only, with read-only binds of only: ``/usr`` (``/bin``, ``/lib``... as their
    symlinks), the interpreter's prefix, its site-packages, ``/etc/ld.so.cache``, a generated ``/etc/passwd``, the
    ``visible`` folders at ``/grading/<name>`` (the kernel's ``PYTHONPATH``), the kernel's connection file and the
    grader's matplotlib font list (``font_lists``; below level full, the kernel gets a copy in its home). A
    private, size-capped ``/tmp`` (its home and working folder; mounted before the binds, so an interpreter that lives
    under the host's /tmp stays bound there, read-only) and ``/dev/shm``, its own ``/proc`` and ``/dev``.
    Every namespace unshared (mount, PID, network, IPC, UTS, cgroup, user): no network at all, the grader talks to
    the kernel over Unix sockets (ZeroMQ ``ipc``) reached through ``/proc/<pid>/root``. uid 65534 inside, no
    capabilities, no new user namespaces, an environment made from an allow-list. Killing the sandbox kills its PID
    namespace: no process of the submission survives, whatever ``setsid`` or double fork it used.
``fallback`` (no usable namespaces, grader is root: e.g. Gradescope's Docker image)
    The kernel runs as its own unprivileged uid (one per grading process, unused by anyone else), in a private
    0700 folder, with the environment allow-list and rlimits including a process count. Grader-only files must be
    owner-only (mode 0700/0600, owned by root): the deployment rule this level relies on. At the end every process
    of that uid is killed and its files in ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are removed.
``none`` (no namespaces and not root)
    rlimits and the process group only: the kernel can read whatever the grader's user can.

At every level, cgroup v1 ``pids`` and ``memory`` hierarchies that the grader may write (root here) cap the whole
tree's processes and memory, and are swept at the end. ``AUTOGRADER_ISOLATION=fallback|none`` forces a lower level
and ``AUTOGRADER_BWRAP`` names the bwrap binary (tests; an empty value means "not installed").

The package, by job: ``probing`` (what the machine offers, and so the level), ``levels/`` (one strategy per level:
what it covers and how a kernel starts in it), ``bwrap`` (bubblewrap's command line), ``stage`` (folders bound for the
kernel's uid), ``kernel`` (the kernel's environment and launcher), ``cgroups``, ``uids`` (the kernel's own uid and its
processes), ``caches`` (the grader's cache folder and matplotlib's font list), ``box`` (one kernel's ``Box``), and
``isolation`` (the record of the level in force). What other modules use is imported here.
"""

from autograder.sandbox.box import Box
from autograder.sandbox.bwrap import needs
from autograder.sandbox.caches import font_lists, grader_cache
from autograder.sandbox.cgroups import Cgroups, sweep_stale
from autograder.sandbox.isolation import (BWRAP_ENV, FORCE_ENV, INSIDE_RUN, INSTALL, LEVELS, THREAD_VARS, Isolation,
                                          IsolationError, require)
from autograder.sandbox.kernel import kernel_env, launcher
from autograder.sandbox.probing import probe
from autograder.sandbox.stage import Stage
from autograder.sandbox.uids import fallback_uid

__all__ = ["BWRAP_ENV", "FORCE_ENV", "INSIDE_RUN", "INSTALL", "LEVELS", "THREAD_VARS", "Box", "Cgroups", "Isolation",
           "IsolationError", "Stage", "fallback_uid", "font_lists", "grader_cache", "kernel_env", "launcher", "needs",
           "probe", "require", "sweep_stale"]
