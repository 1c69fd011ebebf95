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

## make test: the whole suite, unit, integration and browser, in TEST_WORKERS processes (one test file each at a time)
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## make bench: the benchmark suite (renders, HTTP under wrk, 100 000-image listing); writes bench/results.md
## (BENCH_ARGS="--quick" for a smoke run, "--no-cloud" for embedded mode only)
bench: $(STAMP)
	command -v wrk >/dev/null || { $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq && \
		$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq wrk; }
	ldconfig -p | grep -q 'libvips\.so\.42' || { $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq && \
		$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq libvips42; } || \
		echo "libvips not installable: the PNG-vs-libvips target will say 'not measured'"
	$(BIN)/python -c 'import pyvips, httpx' 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache

## make lambda-package: the AWS Lambda thumbnail function's zip, lambda/build/imagify-thumbnails.zip
## (LAMBDA_ARCH=x86_64|arm64, LAMBDA_PYTHON=3.12: the runtime the zip is for)
LAMBDA_ARCH   ?= x86_64
LAMBDA_PYTHON ?= 3.12
.PHONY: lambda-package
lambda-package: $(STAMP)
	$(BIN)/python lambda/package.py --arch $(LAMBDA_ARCH) --python $(LAMBDA_PYTHON)
