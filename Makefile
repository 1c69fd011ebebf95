# Everything a fresh clone needs happens inside these targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate the SQLite database, serve on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/imagify migrate
	$(BIN)/imagify serve --host $(HOST) --port $(PORT)

## make test: the whole suite, unit and integration
test: $(STAMP)
	$(BIN)/python -m pytest

## make bench: the renderer against the naive resize path
bench: $(STAMP)
	$(BIN)/python bench/render_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache

## make lambda-package: the AWS Lambda thumbnail function's zip, lambda/build/imagify-thumbnails.zip
## (LAMBDA_ARCH=x86_64|arm64, LAMBDA_PYTHON=3.12: the runtime the zip is for)
LAMBDA_ARCH   ?= x86_64
LAMBDA_PYTHON ?= 3.12
.PHONY: lambda-package
lambda-package: $(STAMP)
	$(BIN)/python lambda/package.py --arch $(LAMBDA_ARCH) --python $(LAMBDA_PYTHON)
