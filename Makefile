# `make` sets up .venv from scratch and runs the main job; `make test` runs the test suite (CI: .ci/run).
PY := .venv/bin/python

.PHONY: demo test release
demo: .venv/installed
	$(PY) -m autograder demo

test: .venv/installed
	$(PY) -m pytest

release: .venv/installed
	$(PY) -m autograder release

.venv/installed: pyproject.toml requirements.lock
	python3 -m venv .venv
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@
