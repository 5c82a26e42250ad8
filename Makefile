# The commands the README names; CI calls `make test` through .ci/run.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
REDIS_PORT ?= 6379

.PHONY: install install-dev lock run worker test test-quick lint bench bench-service proto openapi \
	redis-binary redis-up postgres-binary pgbouncer-binary go-toolchain node-binary wrk-binary chromium

# Two installs, each from its lockfile (requirements/*.txt, pinned with hashes; `make lock`
# rewrites them from pyproject.toml): `install` is what `make run` / `make worker` run
# (jobwire[server]), `install-dev` adds the test, lint and deploy-check tools (jobwire[dev]).
$(VENV)/.installed-server: pyproject.toml requirements/server.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/server.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@ $(VENV)/.installed-server

install: $(VENV)/.installed-server

install-dev: $(VENV)/.installed-dev

# Re-pin both lockfiles after a change to pyproject.toml's dependencies (needs PyPI).
lock: install-dev
	$(BIN)/uv pip compile pyproject.toml --extra server --universal --python-version 3.11 \
		--generate-hashes --quiet --custom-compile-command 'make lock' -o requirements/server.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --quiet --custom-compile-command 'make lock' -o requirements/dev.txt

# Tests start their own throwaway redis-server; install the binary if it is missing.
redis-binary:
	@command -v redis-server >/dev/null || { \
		echo "redis-server not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# bench/bench_service.py drives the REST load with wrk; install it if it is missing.
wrk-binary:
	@command -v wrk >/dev/null || { \
		echo "wrk not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# tests/ui drive headless Chromium through Playwright, using Debian's browser (Playwright's
# own browser download is not used); install it if it is missing.
chromium:
	@command -v chromium >/dev/null || { \
		echo "chromium not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# tests/clients/test_go.py builds and tests the Go client (stdlib only, Go >= 1.19).
go-toolchain:
	@command -v go >/dev/null || test -x /usr/lib/go/bin/go || { \
		echo "go not found: installing golang-go with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }

# tests/clients and tests/grpc run the TypeScript client and a Node.js gRPC client (Node >= 18).
node-binary:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "node/npm not found: installing nodejs and npm with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

# Rewrite clients/openapi.json from the app; tests/clients/test_openapi.py fails while stale.
openapi: install-dev
	$(BIN)/python clients/generate_openapi.py

# Tests initdb their own throwaway PostgreSQL (tests/conftest.py); install the server
# binaries if none are found (Debian keeps them in /usr/lib/postgresql/<version>/bin), unless
# JOBWIRE_TEST_POSTGRES_URL points the tests at a running server.
postgres-binary:
	@test -n "$$JOBWIRE_TEST_POSTGRES_URL" || command -v initdb >/dev/null \
		|| ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "PostgreSQL server binaries not found: installing them with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# The PgBouncer conformance row (tests/conftest.py) starts its own pgbouncer in front of the
# test PostgreSQL; Debian installs the binary in /usr/sbin. Install it if it is missing.
pgbouncer-binary:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
		echo "pgbouncer not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; }

# For `make run`: a local Redis on REDIS_PORT unless one already answers there.
redis-up: redis-binary
	@redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1 || \
		redis-server --daemonize yes --port $(REDIS_PORT) --bind 127.0.0.1 --save "" --appendonly no

# The service on the embedded SQLite store (./jobwire.db): nothing else needs to run.
run: install
	$(BIN)/jobwire serve

# The example worker, pulling from the service that `make run` started.
worker: install
	$(BIN)/jobwire worker examples.tasks.settings

# pytest's addopts (pyproject.toml) run the tests in pytest-xdist workers.
test: install-dev redis-binary postgres-binary pgbouncer-binary go-toolchain node-binary chromium lint
	$(BIN)/pytest

# The quick run: no lint, no tests marked slow.
test-quick: install-dev redis-binary postgres-binary pgbouncer-binary
	$(BIN)/pytest -m "not slow"

lint: install-dev
	$(BIN)/ruff check service tests bench examples
	$(BIN)/ruff format --check service tests bench examples clients protos
	$(BIN)/mypy

# Regenerate the committed gRPC stubs (service/jobwire/v1/jobwire_pb2*) from protos/;
# tests/grpc/test_grpc_stubs.py fails while they are out of date.
proto: install-dev
	$(BIN)/python protos/generate.py service

bench: install-dev redis-binary
	$(BIN)/python bench/bench_redis.py

# The service's own cost (issue 12): jobwire serve against bare FastAPI/grpc.aio apps.
bench-service: install-dev redis-binary wrk-binary
	$(BIN)/python bench/bench_service.py
