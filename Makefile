# The two commands a newcomer needs are `make run` and `make test`; the
# rest are their parts. Every target works on a fresh Debian machine.
CARGO ?= cargo
RELEASE := --release --locked

.PHONY: run test bench fmt lint deps build

## run: install and start what is missing, build, and run the whole connector locally
run: deps build
	deploy/local/run.sh

## test: everything CI checks (formatting, lints, all tests against the real PostgreSQL and RabbitMQ)
test: deps lint
	deploy/local/sweep-test-leftovers.sh
	$(CARGO) test $(RELEASE) --workspace --all-targets
	$(CARGO) test $(RELEASE) --workspace --doc

## bench: the benchmarks whose figures BENCHMARKS.md reports
bench: deps
	$(CARGO) run $(RELEASE) -p fa-amqp --example publish_bench
	$(CARGO) run $(RELEASE) -p sfsim --example sfsim_bench
	$(CARGO) build $(RELEASE) -p token-broker --bin token-broker
	$(CARGO) run $(RELEASE) -p token-broker --example token_bench
	$(CARGO) build $(RELEASE) -p importer --bin importer
	$(CARGO) run $(RELEASE) -p importer --example import_bench
	$(CARGO) build $(RELEASE) -p activity-writer --bin activity-writer
	$(CARGO) run $(RELEASE) -p activity-writer --example writer_bench

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(RELEASE) --workspace --all-targets -- -D warnings

## deps: install (Debian packages) and start PostgreSQL and RabbitMQ, create the database
deps:
	deploy/local/deps.sh

build:
	$(CARGO) build $(RELEASE) --workspace --bins
