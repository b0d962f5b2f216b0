# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the project into it when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rt3lab-installed
# The CPU build of torch lies on disk on these machines; point pip at it when present.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

export MPLBACKEND ?= Agg
export PYBAMM_DISABLE_TELEMETRY ?= true

.PHONY: demo test test-all test-setup lint format install clean docs-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rt3lab demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian packages the tests use, installed when missing and running as root: qemu-user (the
# runner's aarch64 tests), headless Chromium (the report's browser test) and sigrok-cli
# (reading back `meter export --format sigrok`). ziglang's first cross-build of musl is
# slow: warm it here, outside the tests' time limits.
APT_NEEDS = $(if $(shell command -v qemu-aarch64),,qemu-user) \
            $(if $(shell command -v chromium || command -v chromium-browser),,chromium) \
            $(if $(shell command -v sigrok-cli),,sigrok-cli)
test-setup: $(STAMP)
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(APT_NEEDS); \
	  else echo "not root: cannot install $(APT_NEEDS)"; fi; fi
	d=$$(mktemp -d) && $(BIN)/rt3lab runner build --target aarch64-linux --out $$d/r; rm -rf $$d

# The fast suite (slow-marked tests left out: pyproject's addopts), for developers.
test: lint test-setup
	$(BIN)/python -m pytest

# Every test, slow-marked included: what CI (.ci/run) runs. `-m ''` replaces the addopts'
# `-m 'not slow'`. pytest-xdist runs TEST_JOBS workers, each test file whole on one worker
# (--dist loadfile: a module's fixture, such as test_demo.py's cold demo, is built once);
# serially the suite took 33 min on a clean clone of a 2-core machine, over CI's 30.
# --durations lists the longest, so a test that grows shows in the log.
TEST_JOBS ?= 2
test-all: lint test-setup
	$(BIN)/python -m pytest -m '' -n $(TEST_JOBS) --dist loadfile --durations=25

# Recorded figures under docs/ against the code that made them (lab/bench/provenance.py).
docs-check: $(STAMP)
	$(BIN)/python -m lab.bench.provenance check docs

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
