"""The kernel's system-call filter: a seccomp BPF program, built here, that bubblewrap loads (``bwrap --seccomp FD``),
or, at the levels without bubblewrap, the kernel's process itself before exec (``Loader``).

Namespaces do not cover everything the Linux kernel offers a process. Some interfaces are global to the machine, or
check only the uid, and a training kernel has no use for them. The filter refuses them with EPERM (the kernel's
answer to an unprivileged caller, so libraries that probe them degrade as they would there) and allows the rest: a
short deny-list of whole interfaces on top of the allow-listed filesystem, network and process view. Refused, and
why:

- **kernel keyrings** (``add_key``, ``request_key``, ``keyctl``): not namespaced; a key added by one grade was read by
  the next student's kernel, and an ordinary user's sandbox could link keys into that user's keyring.
- **the machine's state**: loading modules, kexec, reboot, swap, the clock, quotas, process accounting, the kernel
  log, host and domain names, I/O ports (``init_module``, ``kexec_load``, ``reboot``, ``swapon``, ``settimeofday``,
  ``clock_adjtime``, ``quotactl``, ``acct``, ``syslog``, ``sethostname``, ``iopl``...).
- **mounts and namespaces**: ``mount`` and the new mount API, ``pivot_root``, ``chroot``, ``unshare``, ``setns``
  (the sandbox is built before the filter applies; nothing inside needs to change it).
- **other processes' memory and files**: ``ptrace``, ``process_vm_readv``/``writev``, ``pidfd_getfd``, ``kcmp``.
- **large attack surfaces a kernel exploit starts from**: ``bpf``, ``perf_event_open``, ``userfaultfd``, io_uring
  (whose operations seccomp cannot see), file handles (``open_by_handle_at``, the "shocker" escape),
  ``fanotify_init``, ``lookup_dcookie``, ``uselib``, obsolete calls (``_sysctl``, ``ustat``, ``sysfs``...).
- any call through another ABI (i386's ``int 0x80``, x32): their numbers differ, so a filter on x86_64's numbers
  would not see them.

Torch, NumPy, matplotlib, Gymnasium/MuJoCo and the Jupyter kernel use none of these (a whole grade runs under the
filter in ``tests/test_host.py``). Only x86_64 is described; elsewhere ``program()`` is None and the isolation
record says the filter is missing.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# x86_64 numbers (asm/unistd_64.h; tests/test_host.py compares them with the installed header)
REFUSED_X86_64 = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "ustat": 136, "sysfs": 139, "vhangup": 153, "modify_ldt": 154,
    "pivot_root": 155, "_sysctl": 156, "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164,
    "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170,
    "setdomainname": 171, "iopl": 172, "ioperm": 173, "create_module": 174, "init_module": 175,
    "delete_module": 176, "get_kernel_syms": 177, "query_module": 178, "quotactl": 179, "nfsservctl": 180,
    "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "fanotify_init": 300, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438,
    "mount_setattr": 442, "quotactl_fd": 443,
}
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# classic BPF, as seccomp reads it: struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}
LD_ABS_W, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
NR_OFFSET, ARCH_OFFSET = 0, 4  # struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter as bwrap's ``--seccomp`` reads it (an array of sock_filter), or None on an architecture it does not
    describe."""
    if (machine or platform.machine()) not in ("x86_64", "AMD64"):
        return None
    numbers = sorted(set(REFUSED_X86_64.values()))
    deny = _insn(RET_K, RET_ERRNO | errno.EPERM)
    # after the checks come two returns: allow, then deny; a jump's offset counts the instructions it skips
    checks = [_insn(JGE_K, X32_SYSCALL_BIT, jt=len(numbers) + 1)]
    for i, number in enumerate(numbers):
        checks.append(_insn(JEQ_K, number, jt=len(numbers) - i))
    head = [_insn(LD_ABS_W, ARCH_OFFSET), _insn(JEQ_K, AUDIT_ARCH_X86_64, jt=1), deny, _insn(LD_ABS_W, NR_OFFSET)]
    return b"".join(head + checks + [_insn(RET_K, RET_ALLOW), deny])


def describe() -> str:
    """For the isolation record."""
    if program() is None:
        return ""
    return ("seccomp filter: keyrings, module loading, kexec, reboot, swap, clock, mounts and namespaces, ptrace and "
            "other processes' memory, bpf, perf events, userfaultfd, io_uring, file handles and other ABIs refused")


PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


class _Program(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Loader:
    """Loads the filter into the calling process, for levels without bubblewrap: made before a fork (ctypes objects
    are not made between fork and exec), ``load()`` called in the child before exec. Once loaded, the filter holds for
    the process and everything it starts, and no_new_privs forbids gaining privileges through exec."""

    def __init__(self):
        code = program()
        self.libc = ctypes.CDLL(None, use_errno=True) if code else None
        self.buffer = ctypes.create_string_buffer(code, len(code)) if code else None
        self.program = _Program(len(code) // 8, ctypes.addressof(self.buffer)) if code else None

    def load(self) -> None:
        if self.program is None:
            return
        if (self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or
                self.libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self.program), 0, 0) != 0):
            raise OSError(ctypes.get_errno(), "loading the kernel's syscall filter")
