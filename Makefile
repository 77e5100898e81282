# The two commands: `make run` (embedded demo) and `make test` (the whole suite on PostgreSQL + Redis).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The suite's services; .ci/run and developers get the same.
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tsreview} \
	CELERY_BROKER_URL=$${TEST_BROKER_URL:-redis://127.0.0.1:6379/14} \
	TSREVIEW_CYBERTIP_XSD=$${TSREVIEW_CYBERTIP_XSD:-../shared/ncmec/cyber_tipline.xsd}

.PHONY: run test bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	mkdir -p var
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PY) manage.py migrate --noinput
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PY) manage.py seed_demo
	@echo "Serving on http://127.0.0.1:8000/ (embedded: SQLite, tasks in-process). Ctrl-C stops."
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PY) manage.py runserver 127.0.0.1:8000 --insecure --noreload

test: $(VENV)/.installed
	scripts/services.sh
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	scripts/services.sh
	$(TEST_ENV) $(PY) bench/run.py

clean:
	rm -rf $(VENV) var
