# `make` sets up .venv from scratch and runs the main job; `make test` runs the test suite (CI: .ci/run).
PY := .venv/bin/python
# pyproject promises Python 3.11 (requires-python; autograder/pins.py says why): prefer python3.11 where python3 is not
BASE_PYTHON ?= $(shell command -v python3.11 || echo python3)

.PHONY: demo test quick release sandbox
demo: .venv/installed sandbox
	$(PY) -m autograder demo

# The suite in TEST_JOBS processes (pytest-xdist; auto: one per core; tests/conftest.py says how tests are grouped and
# ordered), then the few tests that measure a CPU share alone (marked serial). Both parts always run; either failing
# fails `make test`. One more process than cores did not help here: the suite is CPU-bound on 2 cores (docs/benchmark.md).
TEST_JOBS ?= auto
test: .venv/installed sandbox
	@$(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup -m "not serial"; parallel=$$?; \
		$(PY) -m pytest -m serial; serial=$$?; exit $$(( parallel || serial ))

# The inner loop (README, Tests): the units of the engine and the kit, the channel and the sandbox, no training to a
# budget and no whole notebook; `make test` before a merge.
QUICK := tests/test_checks.py tests/test_config.py tests/test_envs.py tests/test_calibrate.py tests/test_templates.py \
	tests/test_exit_codes.py tests/test_trusted.py tests/test_channel.py tests/test_startup.py tests/test_properties.py \
	tests/test_public.py tests/test_sandbox.py tests/test_layout.py
quick: .venv/installed sandbox
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup -m "not slow and not serial" $(QUICK)

# bubblewrap for the kernel's sandbox (installed when we may; the grader says which level it gets, and why), and
# shellcheck for the tests of Gradescope's scripts (tests/test_templates.py; skipped without it)
sandbox: .venv/installed
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1; } || \
		echo "bubblewrap not installed: student code gets a lower isolation level (see README, Isolation)"
	@command -v shellcheck >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1; } || \
		echo "shellcheck not installed: tests/test_templates.py skips its lint of setup.sh and run_autograder"
	@$(PY) -m autograder.sandbox

release: .venv/installed
	$(PY) -m autograder release

# The lock is installed by uv (from PyPI, its version pinned): in half of pip's time here (docs/benchmark.md, pip or uv);
# `make INSTALLER=pip` installs with pip. uv reads no pip.conf: `python -m autograder.pins uv-args` hands it the
# find-links and indexes pip is configured with (this machine: torch's CPU wheel in a local folder), PyTorch's CPU
# index where it can be reached, and pip's choice among indexes. Bytecode is compiled, as pip does: the sandboxed
# kernel cannot write the venv's __pycache__.
INSTALLER ?= uv
# the same uv as setup.sh's (autograder/exports.py UV_VERSION; tests/test_pins.py checks it)
UV_VERSION := 0.13.9

.venv/installed: pyproject.toml requirements.lock
	$(BASE_PYTHON) -m venv .venv
ifeq ($(INSTALLER),uv)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	.venv/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock \
		$$($(PY) -m autograder.pins uv-args)
else
	$(PY) -m pip install --quiet -r requirements.lock
endif
	ln -sf ../../bin/autograder .venv/bin/autograder  # `autograder ...` from any folder, the venv active
	touch $@
