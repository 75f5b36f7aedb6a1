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

.DEFAULT_GOAL := help
.PHONY: help build release demo data preprocess test check fmt clippy bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

build: ## Dev build of the adlens binary (shared by demo and test)
	$(CARGO) build --locked --bin adlens

release: ## Optimised build (for bench and the full dump)
	$(CARGO) build --locked --release --bin adlens

demo: build ## Generate a small dump, preprocess it, query it
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
	@echo; echo "Explore further: $(DEV_BIN) sql --data data/demo/clean"

data: build ## Generate the ~100k-row sample under data/
	$(DEV_BIN) generate --rows $(DATA_ROWS) --out data/sample.csv --truth data/sample_topics.csv

preprocess: release ## Clean RAW=path/to/dump.csv into OUT=data/clean (release build)
	$(RELEASE_BIN) preprocess --input $(RAW) --output $(OUT)

test: ## Run every test (dev profile, nextest)
	$(CARGO) nextest run --locked --no-fail-fast

check: fmt clippy ## Formatting and lints, as CI runs them

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench: release ## Time preprocess, batch and score on a cached 3M-row dump (rows/s, MB/s, peak RSS)
	@mkdir -p data/bench
	@test -f data/bench/raw-$(BENCH_ROWS).csv || $(RELEASE_BIN) generate --rows $(BENCH_ROWS) --out data/bench/raw-$(BENCH_ROWS).csv
	@scripts/bench.sh $(RELEASE_BIN) data/bench/raw-$(BENCH_ROWS).csv data/bench/clean data/bench/models

clean: ## Remove generated data (keeps the compiled cache)
	rm -rf data/demo data/bench data/sample.csv data/sample_topics.csv
