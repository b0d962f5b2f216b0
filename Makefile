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

.PHONY: demo test test-deps lint format install clean

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

# The report's browser test needs headless Chromium (Debian `chromium`); install it when
# missing and running as root, else the test says it was skipped.
test-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends chromium; \
	    else echo "chromium not installed (not root): the report's browser test will skip"; fi; }

test: lint test-deps
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
