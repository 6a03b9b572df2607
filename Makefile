# Two commands matter: `make run` (the whole service, zero configuration) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint install browser zapier-app bench clean
ZAPIER_STAMP := zapier-app/node_modules/.installed

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m callnfy_integrations.dev.run

# The browser test drives Debian's Chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The Zapier app's dependencies, exactly as the lockfile has them (Node and npm from the machine).
$(ZAPIER_STAMP): zapier-app/package.json zapier-app/package-lock.json
	cd zapier-app && npm ci --no-audit --no-fund --loglevel=error
	touch $(ZAPIER_STAMP)

zapier-app: $(ZAPIER_STAMP)

# TEST_DATABASE_URL / TEST_REDIS_URL select real servers; unset, the embedded ones start.
test: $(STAMP) browser $(ZAPIER_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The edit–test loop (about a minute): everything but the tests marked processes, browser, chaos,
# fuzz or slow (markers in setup.cfg). `make test` stays the full suite and CI's command.
# The fuzz module is not even collected: schemathesis builds its cases at collection (~20 s here).
FAST_MARKERS := not processes and not browser and not chaos and not fuzz and not slow
test-fast: $(STAMP)
	$(PY) -m pytest -m "$(FAST_MARKERS)" --ignore=tests/test_api_fuzz.py $(PYTEST_ARGS)

# The linter's settings are in pyproject.toml; .ci/run runs this before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Every benchmark in turn, then bench/RESULTS.md rewritten from their figures (bench/report.py; ~10 min).
# BENCH_ARGS=--quick: small runs (~3 min) reported to bench/out/RESULTS-quick.md instead.
# DATABASE_URL / REDIS_URL select real servers (that Redis database is flushed: give it a spare one);
# unset, the embedded ones start. The status bench drives Debian's wrk.
BENCH_ARGS ?=
bench: $(STAMP)
	@command -v wrk >/dev/null || { \
	  echo "installing Debian's wrk for the status bench"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/report.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache zapier-app/node_modules
