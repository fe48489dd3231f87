# The two commands a newcomer needs: `make demo` and `make test`; `make reset` is the way back to the clean demo
# after a scenario. Every target sets up what it uses.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: demo test ui lint venv chromium bqemulator postgresql schema reset clean

# GDP hashes personal data with a key from the environment. A fixed key keeps the demo's hashes stable
# from run to run; it is for sample data only: set your own BARECOUNT_PII_KEY for anything real.
BARECOUNT_PII_KEY ?= sample-data-only-not-a-secret
export BARECOUNT_PII_KEY

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv sync --frozen --quiet --compile-bytecode
	@touch $(STAMP)

venv: $(STAMP)

# The BigQuery emulator (bigquery-emulator profile, BigQuery tests) needs DuckDB 1.5: its own environment.
BQEMULATOR := .venv-bqemulator
$(BQEMULATOR)/.installed: resources/bqemulator.txt
	@test -x $(BQEMULATOR)/bin/python || python3 -m venv $(BQEMULATOR)
	$(BQEMULATOR)/bin/python -m pip install -qq --disable-pip-version-check -r resources/bqemulator.txt
	@touch $@

bqemulator: $(BQEMULATOR)/.installed

# UI tests drive the Debian chromium (a browser download is not possible here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian chromium for the UI tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The service tests keep the service's state on a real PostgreSQL too: Debian's server, started by the tests.
postgresql:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian postgresql for the service tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

demo: venv
	$(BIN)/barecount demo

# One test worker more than the cores: a quarter of the suite's time waits (a browser, the daemon's ticks, a
# server starting), and the spare worker fills it. On 2 cores: 768 s with 3 workers, 879 s with 2.
TEST_WORKERS ?= $$(( $$(nproc) + 1 ))

test: venv chromium bqemulator postgresql
	$(BIN)/ruff check .
	$(BIN)/barecount check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

# The UI's port: `make ui UI_PORT=3001` when 3000 is taken.
UI_PORT ?= 3000

ui: venv
	$(BIN)/barecount ui --port $(UI_PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schema: venv
	$(BIN)/barecount schema

# Back to the clean demo: removes the sample data, the warehouse and the Dagster home, and the contract versions
# runs drafted and approvals changed. It lists them and asks first; `make reset YES=1` does not ask.
reset: venv
	$(BIN)/barecount reset $(if $(YES),--yes)

# The same as reset: a warehouse removed alone would leave the contract versions it approved, which the clean
# sample data no longer fits, so the next demo would be blocked by drift.
clean: reset
