#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu; the zip is in /autograder/source).
# It installs what grading this assignment needs (requirements.txt: the grader's packages and the assignment's, with
# what they need, at the exact versions of the course's requirements.lock; torch 2.13.0 as its CPU build
# torch==2.13.0+cpu, which only PyTorch's CPU index serves; no nbgrader, JupyterLab or pytest), on the Python that
# pyproject promises and tests/test_pins.py checks every pin against: CPython @PYTHON@, a final release.
#
# Python does not come from the image's apt: Ubuntu 22.04 ships 3.10 (its python3.11 is a 3.11.0 release
# candidate) and 24.04 ships 3.12. In order:
#   1. uv @UV@ (Astral's static binary; its version pinned here, so the same CPython @PYTHON@.x patch release each
#      build) installs a standalone CPython build (python-build-standalone), whatever the Ubuntu release;
#   2. else the deadsnakes PPA (Ubuntu's usual source of other Python versions), through apt;
#   3. else a final python@PYTHON@ already on the image.
# Each is checked: a final CPython @PYTHON@ with venv and ensurepip. Then a venv in $ROOT/venv gets requirements.txt,
# and the reference solution is graded once: the build fails unless it gets full marks, and the reference's learning
# curves for the feedback figures are cached in the image.
# AUTOGRADER_ROOT, AUTOGRADER_SETUP_PYTHON (skip getting Python: use this interpreter), AUTOGRADER_TORCH_INDEX
# (another index for torch's CPU build; empty: pip's own configuration) and AUTOGRADER_SETUP_ONLY_PYTHON (stop once
# Python is found) let tests run it away from Gradescope.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
TORCH_INDEX="${AUTOGRADER_TORCH_INDEX-@TORCH_INDEX@}"
export DEBIAN_FRONTEND=noninteractive

python_ok() {
  "$1" -c 'import sys, venv, ensurepip
sys.exit(not (sys.version_info[:2] == (@PYTHON_TUPLE@) and sys.version_info.releaselevel == "final"))' 2>/dev/null
}

# Each way prints the interpreter's path as its last line, everything else to stderr (the build log); it stops at
# its first failing step (set -e does not apply inside `if`).
get_python_uv() {
  if ! command -v curl >/dev/null 2>&1; then
    { apt-get update && apt-get install -y --no-install-recommends ca-certificates curl; } >&2 || return 1
  fi
  curl -LsSf "https://astral.sh/uv/@UV@/install.sh" | env UV_UNMANAGED_INSTALL="$ROOT/uv" sh >&2 || return 1
  export UV_PYTHON_INSTALL_DIR="$ROOT/python"
  "$ROOT/uv/uv" python install "@PYTHON@" >&2 || return 1
  "$ROOT/uv/uv" python find --python-preference only-managed "@PYTHON@"
}

get_python_deadsnakes() {
  {
    apt-get update &&
      apt-get install -y --no-install-recommends software-properties-common gpg-agent &&
      add-apt-repository -y ppa:deadsnakes/ppa &&
      apt-get update &&
      apt-get install -y --no-install-recommends "python@PYTHON@" "python@PYTHON@-venv"
  } >&2 || return 1
  command -v "python@PYTHON@"
}

PY="${AUTOGRADER_SETUP_PYTHON:-}"
if [ -z "$PY" ]; then
  for way in get_python_uv get_python_deadsnakes; do
    if found="$($way | tail -n 1)" && [ -n "$found" ] && python_ok "$found"; then PY="$found"; break; fi
    echo "setup.sh: $way did not give a final CPython @PYTHON@; trying the next way" >&2
  done
fi
if [ -z "$PY" ] && command -v "python@PYTHON@" >/dev/null 2>&1 && python_ok "$(command -v "python@PYTHON@")"; then
  PY="$(command -v "python@PYTHON@")"
fi
if [ -z "$PY" ] || ! python_ok "$PY"; then
  echo "setup.sh: no final CPython @PYTHON@ with venv could be installed (got: ${PY:-none})" >&2
  exit 1
fi
"$PY" -c 'import sys; print("setup.sh: Python", sys.version.split()[0], sys.executable)'
if [ -n "${AUTOGRADER_SETUP_ONLY_PYTHON:-}" ]; then exit 0; fi  # a test of the steps above

# The student's kernel must be able to run this Python at the level it will get: without user namespaces (Gradescope)
# it runs as an unprivileged uid of its own, which cannot run an interpreter under a 0700 home (/root/.pyenv). Checked
# before anything is installed, then on the venv with what the kernel imports, with the level course.toml requires;
# each stops the build with a message that names the fix (autograder/setup_check.py).
PYTHONPATH="$SOURCE" "$PY" -m autograder.setup_check
"$PY" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt" \
  ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
"$ROOT/venv/bin/python" -c 'import torch; print("setup.sh: torch", torch.__version__)'
PYTHONPATH="$SOURCE" "$ROOT/venv/bin/python" -m autograder.setup_check --import ipykernel \
  --config "$SOURCE/course.toml" --assignment "@ASSIGNMENT@"

# The image must grade: the reference solution, graded as a submission at the isolation level found above (the same
# probe run_autograder's grades make), gets full marks.
check="$(mktemp -d)"
cd "$SOURCE"
OMP_NUM_THREADS=1 PYTHONPATH="$SOURCE" "$ROOT/venv/bin/python" -m autograder --config "$SOURCE/course.toml" \
  grade "$SOURCE/source/@ASSIGNMENT@/@NOTEBOOK@" --assignment "@ASSIGNMENT@" --results "$check/results.json" --gradescope
"$ROOT/venv/bin/python" - "$check/results.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))
full = sum(t["max_score"] for t in results["tests"])
level = results.get("extra_data", {}).get("isolation", {}).get("level")
print(f"setup.sh: the reference solution got {results['score']:g} / {full:g} at isolation level {level!r}")
sys.exit(results["score"] < full or full == 0)
EOF
rm -rf "$check"
