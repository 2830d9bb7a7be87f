# One command per job; CI (.ci/run) calls `make test`. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help run test install system-deps lint format typecheck unit integration lock \
        broker-start broker-stop broker-status bench-broker bench-ingest bench-simulate bench-geo geo-generate clean

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

run: install ## run the product: local Kafka broker (unless CITYOPS_BROKER_URL) and a worker
	$(BIN)/cityops run

test: install lint typecheck ## everything CI checks: lint, types, unit and integration tests
	$(BIN)/pytest

# Java and Maven run the local broker; Prometheus's promtool and server check the metrics and
# alert rules in the tests.
SYSTEM_TOOLS := java mvn prometheus promtool
SYSTEM_PACKAGES := openjdk-17-jre-headless maven prometheus

system-deps: ## install Java 17, Maven and Prometheus with apt-get when they are missing
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			$(SYSTEM_PACKAGES); \
	else \
		echo "cityops needs$$missing on PATH (Debian: apt-get install $(SYSTEM_PACKAGES))" >&2; \
		exit 1; \
	fi

install: system-deps $(STAMP) ## create .venv with the pinned dependencies (constraints.txt)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "cityops needs Python 3.11+ ($(PYTHON) is older)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: install ## ruff: formatting and lint rules
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install ## apply ruff formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict over the packages
	$(BIN)/mypy

unit: install ## the tests that need no broker
	$(BIN)/pytest -m 'not integration'

integration: install ## the tests on the real broker
	$(BIN)/pytest -m integration

lock: ## re-resolve constraints.txt from pyproject.toml's ranges
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check '.[dev]'
	.lock-venv/bin/pip freeze --exclude cityops | sed '/^-e /d' > constraints.txt
	rm -rf .lock-venv build

bench-broker: install ## measure the local broker: start/stop time and memory (JSON in bench-results/)
	$(BIN)/python -m streams.broker.bench

bench-ingest: install ## measure ingest on a real broker next to a plain aiokafka loop (JSON in bench-results/)
	$(BIN)/python -m streams.ingest.bench

bench-simulate: install ## measure the simulator: the 2025 fleet (33,000 devices), events/s generated and sent
	$(BIN)/python -m streams.simulate.bench --sensors 20000 --cameras 13000 --minutes 10 --json bench-results/simulate.json

bench-geo: install ## measure the grid locator: points/s batched and single, build time, memory
	$(BIN)/python -m geo.bench

geo-generate: install ## regenerate Heyuan's generated grid (fixed seed; output is committed)
	$(BIN)/python -m geo.generate

broker-start: install ## start the local Kafka broker
	$(BIN)/cityops broker start
broker-stop: install ## stop the local Kafka broker
	$(BIN)/cityops broker stop
broker-status: install ## is the local Kafka broker running?
	$(BIN)/cityops broker status

clean: ## remove the virtualenv and caches (not the broker data: `cityops broker stop` first)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
