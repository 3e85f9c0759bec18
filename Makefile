# `make demo` and `make test` each create .venv if it is missing, install, and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: install demo test test-sqlite test-postgres lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,generation]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/stylevault demo

# The whole suite twice: on SQLite, then on the PostgreSQL server at $(PG_URL).
test: test-sqlite test-postgres

test-sqlite: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Without a reachable server this says so and stops, unless STYLEVAULT_REQUIRE_PG=1 (CI), where it fails.
test-postgres: install
	@if $(PY) -c "import sqlalchemy as sa; sa.create_engine('$(PG_URL)').connect().close()" 2>/dev/null; then \
		STYLEVAULT_TEST_DB=$(PG_URL) $(PY) -m pytest -q $(PYTEST_ARGS); \
	elif [ "$$STYLEVAULT_REQUIRE_PG" = "1" ]; then \
		echo "PostgreSQL at $(PG_URL) is not reachable and STYLEVAULT_REQUIRE_PG=1" >&2; exit 1; \
	else \
		echo "SKIPPED the PostgreSQL run: no server at $(PG_URL) (set PG_URL, or start one)" >&2; \
	fi

lint: install
	$(VENV)/bin/ruff check governance generation migrations tests bench
	$(VENV)/bin/ruff format --check governance generation migrations tests bench
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/catalogue_scale.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache test-artifacts
