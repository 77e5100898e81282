# The two commands: `make run` (embedded demo) and `make test` (the whole suite on PostgreSQL + Redis).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The suite's services; .ci/run and developers get the same.
# NCMEC's schema copy (not ours to ship): beside this checkout, or beside the one it was cloned from.
XSD := $(firstword $(wildcard ../shared/ncmec/cyber_tipline.xsd \
	$(shell git remote get-url origin 2>/dev/null)/../shared/ncmec/cyber_tipline.xsd))
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tsreview} \
	CELERY_BROKER_URL=$${TEST_BROKER_URL:-redis://127.0.0.1:6379/14} \
	TSREVIEW_CYBERTIP_XSD=$${TSREVIEW_CYBERTIP_XSD:-$(or $(XSD),../shared/ncmec/cyber_tipline.xsd)}

.PHONY: run test bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	scripts/run_demo.sh

test: $(VENV)/.installed
	scripts/services.sh
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	scripts/services.sh
	$(TEST_ENV) $(PY) bench/run.py

clean:
	rm -rf $(VENV) var
