# permsync — run `make help` for the targets.
SHELL := /usr/bin/env bash
GO ?= go
# permsync builds with Go 1.27.3 (the release with the standard library's
# security fixes; go.mod's toolchain line). The go command fetches it through
# the Go module proxy the first time (about 76 MB); set GOTOOLCHAIN to
# override.
export GOTOOLCHAIN ?= go1.27.3
PKGS := ./...
# Postgres used by `make test-postgres` (and by CI); trust auth on loopback.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: run
run: ## Start permsync with embedded devkinde on http://localhost:8080 (no configuration needed; Ctrl-C stops it)
	@$(GO) build -o bin/permsync ./cmd/permsync
	@exec ./bin/permsync serve

.PHONY: demo-reset
demo-reset: ## Start the demo afresh: forget devkinde's changes, sessions and jobs (stop make run first)
	rm -rf "$${PERMSYNC_DATA_DIR:-data}"
	@echo "demo reset: the next 'make run' starts from devkinde's seed (admin, alice, bob, carol)"

# `make run-large` shows permsync at scale: devkinde gets a generated tenant
# (LARGE=ORGSxUSERS[@SEED]) in its own data folder.
LARGE ?= 1000x5000
.PHONY: run-large
run-large: ## Like run, with a generated tenant of 1,000 organizations and 5,000 users (LARGE=100x500 for another size)
	PERMSYNC_DEVKINDE_GENERATE='$(LARGE)' PERMSYNC_DATA_DIR=data/large-$(subst @,-,$(LARGE)) $(GO) run ./cmd/permsync serve

.PHONY: devkinde
devkinde: ## Run only devkinde, the Kinde-compatible provider, on :7070
	$(GO) run ./cmd/permsync devkinde --addr 127.0.0.1:7070

.PHONY: build
build: ## Build the permsync binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/permsync ./cmd/permsync

.PHONY: generate
generate: ## Regenerate templ views
	$(GO) tool templ generate

.PHONY: vendor
vendor: ## Copy htmx and its SSE extension from the pinned npm packages into static/vendor
	./scripts/vendor.sh

.PHONY: check-generated
check-generated: generate ## Fail if generated templ files are not committed and current
	@git diff --exit-code --stat -- '*_templ.go' || { echo "generated templ files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- '*_templ.go')" || { echo "untracked generated templ files: commit them"; exit 1; }

.PHONY: check-vendor
check-vendor: vendor ## Fail if static/vendor differs from the pinned npm packages
	@git diff --exit-code --stat -- static/vendor || { echo "static/vendor does not match package-lock.json: run 'make vendor' and commit"; exit 1; }

.PHONY: check-kinde-sdks
check-kinde-sdks: ## Run Kinde's own npm libraries (TypeScript SDK, Management API, webhooks) against devkinde (needs node; not part of make test)
	npm ci --no-audit --no-fund --silent
	PERMSYNC_KINDE_SDKS=1 $(GO) test -count=1 -run TestKindeSDKs -v ./devkinde/

.PHONY: lint
lint: ## gofmt and go vet (check-generated and check-vendor check generated files)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)

# `make vuln` scans with govulncheck against the Go vulnerability database
# taken as a module at VULNDB_VERSION through the Go module proxy; it fails on
# a reachable advisory with a fix, or one without a fix that docs/SECURITY.md
# does not name with its mitigation. Bump VULNDB_VERSION to scan against newer
# advisories.
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
GOVULNCHECK_VERSION ?= v1.9.0
.PHONY: vuln
vuln: ## Scan for known vulnerabilities that permsync's code reaches (govulncheck)
	@mkdir -p bin
	VULNDB_VERSION=$(VULNDB_VERSION) GOVULNCHECK_VERSION=$(GOVULNCHECK_VERSION) GO=$(GO) ./scripts/vuln.sh

.PHONY: test
test: ## Run every test (unit, integration against devkinde, Postgres when reachable, browser tests)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		echo "--- store, app, admin, events, fanout, kindesync and directory tests against Postgres"; \
		PERMSYNC_TEST_DATABASE_URL='$(TEST_POSTGRES_URL)' $(GO) test -count=1 -timeout 20m ./store/... ./app/... ./admin/... ./events/... ./fanout/... ./kindesync/... ./directory/...; \
	else echo "--- Postgres not reachable on 127.0.0.1:5432: skipping the Postgres run"; fi

# `make bench` runs every benchmark once (a few minutes on 2 cores; see
# docs/BENCHMARKS.md). BENCH picks a subset by name, e.g.
# `make bench BENCH=Guard` or `make bench BENCH='PageRequest|SessionRefresh'`;
# BENCHFLAGS adds flags, e.g. BENCHFLAGS='-count=5'.
BENCH ?= .
BENCHFLAGS ?=
.PHONY: bench
bench: ## Run the Go benchmarks and print results (BENCH=regexp picks some, e.g. BENCH=Guard)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=1 -timeout 15m $(BENCHFLAGS) $(PKGS)

# `make bench-admin` loads every GET page under /admin over HTTP, signed in as
# the admin, with the generated tenant of 1,000 organizations and 5,000 users
# synced, and prints each page's p50 and p95 (BenchmarkAdminPages,
# docs/BENCHMARKS.md): on SQLite, then on Postgres when it answers on
# 127.0.0.1:5432 (TEST_POSTGRES_URL). ADMIN_N is the loads per page.
ADMIN_N ?= 50
.PHONY: bench-admin
bench-admin: ## Time every admin page over HTTP at 1,000 orgs / 5,000 users, SQLite then Postgres
	@echo "--- SQLite"
	PERMSYNC_TEST_DATABASE_URL= $(GO) test -run '^$$' -bench AdminPages -benchtime $(ADMIN_N)x -timeout 30m ./app/
	@if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then \
		echo "--- Postgres"; \
		PERMSYNC_TEST_DATABASE_URL='$(TEST_POSTGRES_URL)' $(GO) test -run '^$$' -bench AdminPages -benchtime $(ADMIN_N)x -timeout 30m ./app/; \
	else echo "--- Postgres not reachable on 127.0.0.1:5432: skipping the Postgres run"; fi

# `make bench-http` loads permsync's signed-in GET /dashboard, bare Echo
# rendering the same page, and the stateless alternative (tokens in a
# CookieStore, go-oidc verify per request) with wrk, in alternating rounds,
# and prints the ratios (docs/BENCHMARKS.md). The server process is pinned to
# CPU 0 and wrk to CPU 1 when taskset is there and the machine has 2+ CPUs.
# BENCHHTTPFLAGS adds flags, e.g. BENCHHTTPFLAGS='-rounds 5 -duration 20s'.
BENCHHTTPFLAGS ?=
.PHONY: bench-http
bench-http: ## Compare the signed-in page with bare Echo and a stateless cookie app (needs wrk)
	@command -v wrk >/dev/null || { echo "bench-http needs wrk, the HTTP load generator: on Debian or Ubuntu run 'sudo apt-get install -y wrk'"; exit 1; }
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench-http ./cmd/bench-http
	@if command -v taskset >/dev/null && [ "$$(nproc)" -ge 2 ]; then \
		echo "taskset -c 0 bin/bench-http -wrk-cpu 1 $(BENCHHTTPFLAGS)"; taskset -c 0 bin/bench-http -wrk-cpu 1 $(BENCHHTTPFLAGS); \
	else bin/bench-http $(BENCHHTTPFLAGS); fi

# `make bench-sse` holds 10,000 live pages (1,000 users x 10 sessions, one
# GET /events each, every session a real sign-in) open on one permsync
# process, reports its RSS, then times claims-changed on every stream after
# an admin deletes a permission they all hold (docs/BENCHMARKS.md). It takes
# a few minutes. BENCHSSEFLAGS adds flags, e.g. '-users 100' for a quick run.
BENCHSSEFLAGS ?=
.PHONY: bench-sse
bench-sse: build ## Hold 10,000 live pages open, measure memory and a delete's delivery
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench-sse ./cmd/bench-sse
	bin/bench-sse -permsync bin/permsync $(BENCHSSEFLAGS)

.PHONY: screenshots
screenshots: ## Save screenshots of the main pages into docs/screenshots (needs chromium)
	PERMSYNC_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestScreenshots|TestRBACEditFromTheBrowser' ./e2e/

.PHONY: clean
clean: ## Remove build output and the local data folder
	rm -rf bin data
