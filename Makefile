# Every target bootstraps .venv first, so `make serve` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install bytecode test test-all bench serve clean

install: $(STAMP)

# Re-install only when the pinned dependencies change.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,beam]'
	touch $(STAMP)

# tfgen is installed editable, so its bytecode is Python's to write, and Python writes
# none under PYTHONDONTWRITEBYTECODE (set on some CI machines): every process would then
# compile the tfgen modules it imports (about 0.13 s of a training command's start).
# compileall writes only what is out of date.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q tfgen

# Tests run in TEST_WORKERS processes (pytest-xdist), a file to a worker so a module's
# fixtures are built once; most tests wait on TensorFlow in one thread or on a child
# process, so two workers on two cores finish the default run ~1.7x sooner. Tests marked
# `serial` time requests, and run alone afterwards (pytest exits 5 when none is selected).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
PYTEST_SERIAL := $(BIN)/python -m pytest -q

test: bytecode
	$(PYTEST_PARALLEL) -m 'not slow and not serial'
	$(PYTEST_SERIAL) -m 'serial and not slow' || [ $$? -eq 5 ]

test-all: bytecode
	$(PYTEST_PARALLEL) -m 'not serial'
	$(PYTEST_SERIAL) -m serial || [ $$? -eq 5 ]

# Serves every model under saved_models/: gRPC 127.0.0.1:8500, REST 127.0.0.1:8501.
serve: bytecode
	$(BIN)/tfgen serve --model_config_file serving/models.config \
		--batching_parameters_file serving/batching.config --enable_batching \
		--monitoring_config_file serving/monitoring.config

bench: bytecode
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) *.egg-info
