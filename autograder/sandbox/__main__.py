"""``python -m autograder.sandbox``: the level this machine gives, and what it covers."""

import os

from autograder.sandbox import INSTALL, fallback_uid, probe

if __name__ == "__main__":
    found = probe()
    print(f"sandbox: isolation level {found.level!r}" + (f" ({found.reason})" if found.reason else ""))
    print(f"  host uid of the kernel: {fallback_uid(0) if found.own_uid else os.geteuid()}" + (
        " (unprivileged, its own; the next kernel of a worker gets the next uid)" if found.own_uid else ""))
    for what, how in found.covers.items():
        print(f"  {what}: {how}")
    for what in found.missing:
        print(f"  not contained: {what}")
    if found.level != "full":
        print(f"  for level 'full': {INSTALL}")
