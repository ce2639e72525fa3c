# WebChat. `make run` serves on 127.0.0.1:8080 with the embedded SQLite file webchat.db;
# `make test` runs every check and test (PostgreSQL on 127.0.0.1:5432 is required).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: run build test fmt-check lint deps-gate test-all fmt clean bench bench-quick soak

run:
	$(CARGO) run --release -p webchat-server --bin webchat

build:
	$(CARGO) build --release -p webchat-server --bin webchat

test: fmt-check deps-gate lint test-all

fmt-check:
	$(CARGO) fmt --all -- --check

deps-gate:
	scripts/check-domain-deps.sh

lint:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

test-all:
	scripts/ensure-postgres.sh
	scripts/ensure-nats.sh
	scripts/run-tests.sh
	scripts/schemathesis.sh
	scripts/e2e.sh
	scripts/nginx-smoke.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

# Benchmarks (docs/benchmarks.md): server on core 0, load generator on core 1, SQLite and
# PostgreSQL; prints one table and writes target/bench/results.json.
bench:
	scripts/bench.sh full

bench-quick:
	scripts/bench.sh quick

# W8: a 30 s warm-up, then 5 minutes of mixed load on one server (SQLite, core 0; the load
# generator on core 1): RSS growth, errors and lost messages. Results in target/bench/soak/.
soak:
	scripts/bench.sh soak
