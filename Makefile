# The two commands a newcomer needs are `make run` and `make test`; the
# rest are their parts. Every target works on a fresh Debian machine.
CARGO ?= cargo
RELEASE := --release --locked

.PHONY: run test bench fmt lint deny deps build

## run: install and start what is missing, build, and run the whole connector locally
run: deps build
	deploy/local/run.sh

## test: everything CI checks (formatting, lints, all tests against the real PostgreSQL and RabbitMQ).
## `--tests` rather than `--all-targets`: the benchmarks (examples) hold no tests, clippy
## --all-targets already checks that they compile, and linking each as a test harness cost minutes.
test: deps lint deny
	deploy/prometheus/check.sh
	deploy/k8s/check.sh
	deploy/local/sweep-test-leftovers.sh
	$(CARGO) test $(RELEASE) --workspace --tests
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

## deny: the supply-chain checks that work offline (banned crates, licenses, sources), and
## proof that they fail on a banned crate; `cargo deny check advisories` needs network access
deny:
	@command -v cargo-deny >/dev/null || $(CARGO) install --locked cargo-deny
	$(CARGO) deny --locked check bans licenses sources
	@out=$$($(CARGO) deny --manifest-path tests/deny-fixture/Cargo.toml --config deny.toml check bans 2>&1); \
	if echo "$$out" | grep -q "error\[banned\]: crate 'openssl-sys"; \
	then echo "cargo deny refuses a banned crate (tests/deny-fixture), as it should"; \
	else echo "$$out" >&2; echo "cargo deny did not refuse the banned crate of tests/deny-fixture: the check is broken" >&2; exit 1; fi

## deps: install (Debian packages) and start PostgreSQL and RabbitMQ, create the database
deps:
	deploy/local/deps.sh

build:
	$(CARGO) build $(RELEASE) --workspace --bins
