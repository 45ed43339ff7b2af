# maestro: `make run` starts the workbench, `make test` runs every test.
# Both first install what a fresh Debian machine lacks: the Debian packages
# (with sudo when not root) and the Python virtual environment.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := gcc make pkg-config binutils libdpdk-dev
#: Installed when apt can: program builds use ccache when it is there
#: (codegen/program.py), and work without it.
OPTIONAL_PACKAGES := ccache
#: Only the program benchmark needs these (dpdk-testpmd, its ceiling).
BENCH_PACKAGES := dpdk-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages bench-packages run test lint fuzz bench bench-seq bench-analysis bench-programs clean bench-plan verify-samples

setup: system-packages $(STAMP)

system-packages bench-packages: PACKAGES = $(if $(filter bench-packages,$@),$(BENCH_PACKAGES),$(DEBIAN_PACKAGES))
system-packages bench-packages: OPTIONAL = $(if $(filter bench-packages,$@),,$(OPTIONAL_PACKAGES))
system-packages bench-packages:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@for p in $(OPTIONAL); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$p 2>/dev/null || \
	  { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$p; } || \
	  echo "note: $$p could not be installed; builds run without it"; \
	done

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "maestro needs Python 3.11 (angr 9.2.213); found $$($(PYTHON) --version)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: setup
	$(BIN)/maestro-tui

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# Long fuzzing round (make test runs a short one): C packet parsers on random
# frames under ASan + UBSan for FUZZ_SECONDS, many more hypothesis examples.
FUZZ_SECONDS ?= 300
fuzz: setup
	MAESTRO_FUZZ_SECONDS=$(FUZZ_SECONDS) MAESTRO_FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest -q tests/test_fuzz.py

# Static checks: undefined names, unused imports, syntax errors.
lint: setup
	$(BIN)/ruff check --select F,E9 analyses codegen workbench tests

# Sequential reference runner throughput per sample NF (1M-packet Zipf trace).
bench bench-seq: setup
	$(BIN)/python -m codegen.seq_bench

# Analysis time, paths and peak memory per sample NF.
bench-analysis: setup
	$(BIN)/python -m analyses.analysis_bench

# Generated programs on the simulated NIC beside dpdk-testpmd io-forward (the
# ceiling; dpdk-dev): scaling per NF, harness cost, latency, lock schemes.
# e.g. make bench-programs BENCH_ARGS="--repeat 5 --nf fw"
BENCH_ARGS ?=
bench-programs: setup bench-packages
	$(BIN)/python -m codegen.program_bench $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache

# RSS key synthesis speed and load balance per sample NF (saved analyses).
bench-plan: setup
	$(BIN)/python -m analyses.plan_bench

# Verification of every sample on its paths profile: paths reached per
# device and the verdict.  Only locked tables get a small capacity: a
# sharded table holds its capacity per core, so once one fills the
# shared-nothing program admits what the NF's one table refuses (verify
# reports that difference; it is how sharding behaves at full tables).
# Thresholds are lowered so that the paths past them take a few packets.
verify-samples: setup
	$(BIN)/python -m codegen.verify_bench
