# `make` sets up .venv from scratch and runs the main job; `make test` runs the test suite (CI: .ci/run).
PY := .venv/bin/python

.PHONY: demo test release sandbox
demo: .venv/installed sandbox
	$(PY) -m autograder demo

test: .venv/installed sandbox
	$(PY) -m pytest

# bubblewrap for the kernel's sandbox (installed when we may; the grader says which level it gets, and why)
sandbox: .venv/installed
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1; } || \
		echo "bubblewrap not installed: student code gets a lower isolation level (see README, Isolation)"
	@$(PY) -m autograder.sandbox

release: .venv/installed
	$(PY) -m autograder release

.venv/installed: pyproject.toml requirements.lock
	python3 -m venv .venv
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@
