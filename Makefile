# postback — developer entry points. `make test` is what CI runs.
#
# The build cache lives outside the clone (rocksdb and librdkafka take
# minutes to build; a fresh clone should not pay that again). Every target
# builds with the release profile, so RocksDB and librdkafka are compiled
# once for the demo, the tests, the lints and the benchmarks.
# POSTBACK_CACHE moves all of it (the build, the Kafka jars, the registry):
# point it at an empty directory to see what a new machine sees.
POSTBACK_CACHE ?= $(HOME)/.cache/postback
export POSTBACK_CACHE
CARGO_TARGET_DIR ?= $(POSTBACK_CACHE)/target
export CARGO_TARGET_DIR

.PHONY: setup demo test test-outage lint unit build bench-hot bench-process bench-send kafka-start kafka-stop

setup:
	scripts/setup

## demo: the whole pipeline on this machine (embedded Kafka, local partner), then a summary
demo:
	POSTBACK_SETUP_BROKER=0 scripts/setup
	cargo run --release --bin postback -- demo $(DEMO_ARGS)

## test: setup, formatting, lints, and every test (a real Kafka broker included)
test: setup lint
	scripts/test

## test-outage: the broker-outage test alone (`make test` runs it too, last)
test-outage: setup
	scripts/test-outage

## unit: the tests that need no broker: the library's and the binary's unit
## tests and tests/unit (rules, docs, mock cluster); tests/it needs a broker
unit:
	cargo test --release --lib --bins --test unit

kafka-start:
	scripts/kafka start

kafka-stop:
	scripts/kafka stop

lint:
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings

build:
	cargo build --release

## bench-hot: criterion benchmark of the pure hot path (apply + route + render)
bench-hot:
	cargo bench --bench hot_path

## bench-process / bench-send: end-to-end benchmarks on a real broker
bench-process:
	scripts/bench-process

bench-send:
	scripts/bench-send
