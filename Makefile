# adlens — `make` lists the targets. CI runs `.ci/run`, which runs `make check test`.

SHELL := /bin/bash
# Compiled dependencies live outside the work tree, so fresh clones and new
# sessions on this machine reuse them instead of compiling DataFusion again.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/adlens/target
CARGO ?= cargo
DEV_BIN := $(CARGO_TARGET_DIR)/debug/adlens
RELEASE_BIN := $(CARGO_TARGET_DIR)/release/adlens

RAW ?= data/campaign_data_2023.csv
OUT ?= data/clean
DEMO_ROWS ?= 20000
DATA_ROWS ?= 100000
BENCH_ROWS ?= 3000000
# The size of the reference dump (campaign-data-2023 has 32,949,122 rows).
FULL_ROWS ?= 33000000
STREAM_BENCH_ROWS ?= 1000000
# Python venvs for the notebooks and for the bench's peers (outside the work
# tree, like the build cache).
VENV ?= $(HOME)/.cache/adlens/venv
BENCH_VENV ?= $(HOME)/.cache/adlens/bench-venv
DASHBOARD_PORT ?= 8080
# `sudo` when not root, for apt-get.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Port of the local broker `make demo` and `make bench` start (tests pick free ports).
BROKER_PORT ?= 19092

.DEFAULT_GOAL := help
.PHONY: help build release quality-tools broker s3 browser screenshot dashboard demo data preprocess test check fmt clippy bench bench-full bench-cluster quality clean notebooks notebooks-check

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

build: ## Dev build of the adlens binary (shared by demo and test)
	$(CARGO) build --locked --bin adlens

release: ## Optimised build (for bench and the full dump)
	$(CARGO) build --locked --release --bin adlens

quality-tools: release ## Release build of examples/online_quality (feeds the labelled sets through the online topics)
	$(CARGO) build --locked --release --example online_quality

broker: ## Install the local Kafka-compatible broker (tansu) the tests and demo use
	@scripts/broker.sh path >/dev/null

s3: ## Install the local S3-API server (moto) the object-storage tests use
	@scripts/s3.sh path >/dev/null

browser: ## Install Debian's Chromium for the dashboard's browser test (if missing)
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

demo: build broker ## The whole pipeline on a small generated dump: preprocess, batch, stream, SQL
	@mkdir -p data/demo
	$(DEV_BIN) generate --rows $(DEMO_ROWS) --out data/demo/raw.csv --truth data/demo/topics.csv
	$(DEV_BIN) preprocess --input data/demo/raw.csv --output data/demo/clean
	@echo; echo "== rows per month =="
	$(DEV_BIN) sql --data data/demo/clean -f sql/examples/rows_per_month.sql
	@echo; echo "== reject reasons =="
	$(DEV_BIN) sql --data data/demo/clean -f sql/examples/reject_reasons.sql
	@echo; echo "== top domains =="
	$(DEV_BIN) sql --data data/demo/clean -f sql/examples/top_domains.sql
	@echo; echo "== clusters =="
	$(DEV_BIN) batch --data data/demo/clean --models data/demo/models --k 16
	$(DEV_BIN) sql --data data/demo/clean -f sql/examples/clusters.sql
	@echo; echo "== stream =="
	scripts/demo-stream.sh $(DEV_BIN) data/demo $(BROKER_PORT)
	@echo; echo "Explore further: $(DEV_BIN) sql --data data/demo/clean (or --data data/demo/stream)"
	@echo "Dashboard: make dashboard, then open http://127.0.0.1:$(DASHBOARD_PORT)/"

dashboard: build ## Serve the dashboard over the demo data on DASHBOARD_PORT (Ctrl-C stops it)
	$(DEV_BIN) dashboard --data data/demo/clean --stream-data data/demo/stream --models data/demo/models --port $(DASHBOARD_PORT)

screenshot: build browser ## Regenerate docs/dashboard.png from the demo data (for the README)
	scripts/screenshot.sh $(DEV_BIN) docs/dashboard.png

data: build ## Generate the ~100k-row sample under data/
	$(DEV_BIN) generate --rows $(DATA_ROWS) --out data/sample.csv --truth data/sample_topics.csv

preprocess: release ## Clean RAW=path/to/dump.csv into OUT=data/clean (release build)
	$(RELEASE_BIN) preprocess --input $(RAW) --output $(OUT)

test: broker s3 browser ## Run every test (dev profile, nextest; a real local broker, S3 server and Ballista cluster processes), then the notebooks
	$(CARGO) nextest run --locked --no-fail-fast
	$(MAKE) notebooks-check

$(VENV)/.installed: notebooks/requirements.txt
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r notebooks/requirements.txt
	touch $@

# The last thing `make demo` writes: the online stream's topic events.
data/demo/stream-online/topic_events: | build
	$(MAKE) demo

notebooks: $(VENV)/.installed data/demo/stream-online/topic_events ## Re-run the notebooks on the demo data and save their outputs
	$(VENV)/bin/python notebooks/run.py

notebooks-check: $(VENV)/.installed data/demo/stream-online/topic_events ## Run the notebooks headless without saving (part of `make test`)
	$(VENV)/bin/python notebooks/run.py --check

check: fmt clippy ## Formatting and lints, as CI runs them

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

$(BENCH_VENV)/.installed: bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: release quality-tools broker $(BENCH_VENV)/.installed ## Time preprocess (vs DuckDB), batch, score (3M rows) and stream (1M records, vs a bare pipe); clustering quality
	@mkdir -p data/bench
	@test -f data/bench/raw-$(BENCH_ROWS).csv || $(RELEASE_BIN) generate --rows $(BENCH_ROWS) --out data/bench/raw-$(BENCH_ROWS).csv
	@scripts/bench.sh $(RELEASE_BIN) data/bench/raw-$(BENCH_ROWS).csv data/bench/clean data/bench/models $(BENCH_VENV)/bin/python
	@test -f data/bench/raw-$(STREAM_BENCH_ROWS).csv || $(RELEASE_BIN) generate --rows $(STREAM_BENCH_ROWS) --seed 99 --out data/bench/raw-$(STREAM_BENCH_ROWS).csv
	@scripts/bench-stream.sh $(RELEASE_BIN) data/bench/raw-$(STREAM_BENCH_ROWS).csv data/bench/models data/bench $(BROKER_PORT) $(BENCH_VENV)/bin/python
	@scripts/quality.sh $(RELEASE_BIN) data/bench $(BENCH_VENV)/bin/python

quality: quality-tools ## Clustering quality (NMI, ARI, clusters found) of k-means, dmm and online topics on ../shared/data/benchmarks
	@mkdir -p data/bench
	@scripts/quality.sh $(RELEASE_BIN) data/bench python3

bench-full: release ## Time preprocess on a full-size dump (FULL_ROWS, 33M: ~9 GB, generated once under data/bench/)
	@mkdir -p data/bench
	@test -f data/bench/raw-$(FULL_ROWS).csv || $(RELEASE_BIN) generate --rows $(FULL_ROWS) --out data/bench/raw-$(FULL_ROWS).csv
	@scripts/bench-full.sh $(RELEASE_BIN) data/bench/raw-$(FULL_ROWS).csv data/bench/clean-full

bench-cluster: release ## Time preprocess locally vs on a 1-scheduler/2-executor cluster of this machine (the 3M bench file, then 4 files of 750k)
	@mkdir -p data/bench
	@test -f data/bench/raw-$(BENCH_ROWS).csv || $(RELEASE_BIN) generate --rows $(BENCH_ROWS) --out data/bench/raw-$(BENCH_ROWS).csv
	@for n in 1 2 3 4; do test -f data/bench/part-$$n.csv || $(RELEASE_BIN) generate --rows 750000 --seed $$n --out data/bench/part-$$n.csv; done
	@scripts/bench-cluster.sh $(RELEASE_BIN) data/bench/cluster data/bench/raw-$(BENCH_ROWS).csv
	@scripts/bench-cluster.sh $(RELEASE_BIN) data/bench/cluster data/bench/part-1.csv data/bench/part-2.csv data/bench/part-3.csv data/bench/part-4.csv

clean: ## Remove generated data (keeps the compiled cache)
	rm -rf data/demo data/bench data/sample.csv data/sample_topics.csv
