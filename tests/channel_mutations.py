"""Every defence of the channel matters: remove it, and a test of tests/test_channel.py fails (run by hand).

    OMP_NUM_THREADS=1 .venv/bin/python tests/channel_mutations.py [FIRST]   (FIRST: start at that mutation, 0-based)

Each mutation edits one line of gradekit/channel.py or autograder/channel.py, runs the tests it names, and restores the
file with ``git checkout`` (commit or stash your changes to those two files first). Prints CAUGHT (a test failed) or
MISSED for each; exits 1 if any was missed. Not collected by pytest (not ``test_*.py``).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT, ENGINE = "gradekit/channel.py", "autograder/channel.py"
MUTATIONS = [  # (what is removed, file, text, replacement, the tests that must fail: pytest -k)
    ("symlink followed", ENGINE, "os.O_PATH | os.O_NOFOLLOW", "os.O_PATH", "symlink"),
    ("no socket check", ENGINE, "if not stat.S_ISSOCK(os.fstat(fd).st_mode):", "if False:", "symlink"),
    ("no dtype allow-list", KIT, "if not isinstance(dtype, str) or dtype not in DTYPES:", "if False:", "dtype"),
    ("bool bytes kept as they are", KIT, 'if dtype == "bool":', "if False:", "bool_bytes"),
    ("no layout check", KIT, "offset != -self.end % ALIGN + self.end or ", "", "overlapping"),
    ("no nesting cap", KIT, 'raise WireError(f"values nested deeper than {self.limits.depth}")', "pass", "nested"),
    ("RecursionError uncaught", KIT, "except (UnicodeDecodeError, ValueError, RecursionError) as exc:",
     "except (UnicodeDecodeError, ValueError) as exc:", "nested"),
    ("no size cap", KIT, "if head_len > self.limits.header_bytes or body_len > self.limits.body_bytes:\n"
     "            raise Oversized", "if False:\n            raise Oversized", "oversized and body"),
    ("a deadline per read", KIT, "left = deadline - time.monotonic()", "left = 1.0", "drip"),
    ("late answers kept", ENGINE, "if type(got) is int and got < ident:", "if False:", "late_answer"),
    ("always differentiable", ENGINE,
     "if not slots or not (isinstance(value, torch.Tensor) and value.requires_grad):", "if not slots:", "cut_from"),
    ("int tensors with grad", KIT, "if not tensor.is_floating_point():", "if False:", "int and tensor"),
    ("lost framing kept open", ENGINE, "if not self.reader.partial:", "if True:", "cut and short"),
    ("gradient shapes unchecked", ENGINE, "and tuple(g.shape) == tuple(shape)):", "):", "another and shape"),
    ("a late reply kills the server", KIT, "except OSError:  # the trusted side has gone", "except ValueError:  #",
     "leaves_the_server"),
    ("the result's own code uncaught", KIT, "except Exception as exc:  # noqa: BLE001 - the student's result",
     "except WireError as exc:  # noqa: BLE001 - the student's result", "cannot_cross"),
    ("only Exception caught", KIT, "except BaseException as exc:  # noqa: BLE001 - anything the student's",
     "except Exception as exc:  # noqa: BLE001 - anything the student's", "any_exception"),
    ("unreadable messages uncaught", KIT, "    try:\n        return describe(exc)\n    except Exception:",
     "    try:\n        return describe(exc)\n    except ValueError:", "any_exception"),
    ("a partial sendmsg", KIT, "    if sent < total:\n", "    if False:\n", "larger_than"),
    ("a send without the deadline", ENGINE, "self.sock.settimeout(max(1e-3, deadline - time.monotonic()))  #",
     "self.sock.settimeout(None)  #", "never_reads"),
    ("nested grad tensors sent", ENGINE, "if not isinstance(a, torch.Tensor) and nested_grad(a):", "if False:",
     "inside_a_list"),
]


def main() -> int:
    missed = 0
    for name, path, old, new, tests in MUTATIONS[int(sys.argv[1]) if len(sys.argv) > 1 else 0:]:
        file = ROOT / path
        text = file.read_text()
        assert text.count(old) == 1, f"{name}: the line to mutate is not found once in {path}"
        file.write_text(text.replace(old, new))
        try:
            run = subprocess.run([sys.executable, "-m", "pytest", "tests/test_channel.py", "-q", "-x", "-k", tests,
                                  "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        finally:
            file.write_text(text)  # as it was (not git checkout: that would drop uncommitted work too)
        caught = run.returncode == 1  # failed tests (5 would be: none selected)
        missed += not caught
        print(f"{name:28} {'CAUGHT' if caught else 'MISSED'}  {run.stdout.strip().splitlines()[-1:]}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
