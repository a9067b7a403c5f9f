# Vigil developer entry points. `make` (or `make help`) lists the targets.
#
# The repository is a go.work workspace of several modules. `go test ./...`
# does not work at a workspace root that is not itself a module, and
# golangci-lint v2 does not load packages across modules, so targets iterate
# over MODULES explicitly.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go

MODULES := pkg cmd/vigil services/gateway services/deploy services/monitor services/analysis services/repair services/notify

# Go package patterns covering every module: ./pkg/... ./cmd/vigil/... ./services/<each>/...
PACKAGES := $(foreach m,$(MODULES),./$(m)/...)

# Tools in .bin/ come first, so the pinned versions are the ones used.
export PATH := $(CURDIR)/.bin:$(PATH)

.PHONY: help deps tools k8s-bins generate check-generated buf-breaking versions lint build test bench run fmt chaos

help: ## List the targets
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# PostgreSQL server binaries (initdb, postgres) back `vigil up` and the
# integration tests; Alertmanager is the real peer of the gateway's webhook
# tests; Prometheus serves the analysis metrics tests; a C compiler is needed by `go test -race` (cgo). Installs only what
# is missing, so it is cheap to run before every test.
deps: ## Install PostgreSQL, Prometheus, Alertmanager, Chromium, a CJK font and a C compiler if missing (apt)
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql-15"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -z "$$missing" ]; then echo "deps: PostgreSQL, Prometheus, Alertmanager, Chromium, a CJK font and gcc are installed"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps: missing:$$missing" >&2; \
		echo "deps: this is not a Debian/Ubuntu system; install by hand:" >&2; \
		echo "  - PostgreSQL 15 server binaries (initdb, postgres, pg_ctl), e.g. 'brew install postgresql@15'" >&2; \
		echo "    with pg_config or postgres on PATH" >&2; \
		echo "  - Prometheus Alertmanager, as 'prometheus-alertmanager' on PATH" >&2; \
		echo "  - Prometheus, as 'prometheus' on PATH" >&2; \
		echo "  - a C compiler (gcc or clang) for 'go test -race'" >&2; \
		echo "  - Chromium at /usr/bin/chromium, for the web console's browser tests (pkg/testkit/browser)" >&2; \
		echo "  - a CJK font (e.g. WenQuanYi Micro Hei), so that the Traditional Chinese screenshots show their characters" >&2; \
		exit 1; \
	fi; \
	sudo=""; \
	if [ "$$(id -u)" != 0 ]; then \
		if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
		else echo "deps: need root or sudo to apt-get install:$$missing" >&2; exit 1; fi; \
	fi; \
	echo "deps: installing:$$missing"; \
	$$sudo apt-get update; \
	if [[ "$$missing" == *postgresql-15* ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then \
		echo "deps: postgresql-15 is not packaged here; installing the distribution's postgresql"; \
		missing="$${missing/postgresql-15/postgresql}"; \
	fi; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

# Each tools module is installed again only when its go.mod or go.sum is newer
# than its binaries, so `tools` costs nothing once .bin/ is current.
tools: ## Install buf, the protoc plugins, golangci-lint, helm, kubeconform and kustomize (pinned in tools/*) into .bin/
tools: .bin/buf .bin/protoc-gen-go .bin/golangci-lint .bin/helm .bin/kubeconform .bin/kustomize
	@:

# protoc-gen-go stands for the four protoc plugins of tools/protoc.
.bin/buf: tools/buf/go.mod tools/buf/go.sum
.bin/protoc-gen-go: tools/protoc/go.mod tools/protoc/go.sum
.bin/golangci-lint: tools/lint/go.mod tools/lint/go.sum
# helm, kubeconform and kustomize check the chart and the Kustomize base
# (cmd/vigil/internal/chart); helm is a few minutes' build cold, then cached
# here like the others.
.bin/helm: tools/helm/go.mod tools/helm/go.sum
.bin/kubeconform: tools/kubeconform/go.mod tools/kubeconform/go.sum
.bin/kustomize: tools/kustomize/go.mod tools/kustomize/go.sum
.bin/buf .bin/protoc-gen-go .bin/golangci-lint .bin/helm .bin/kubeconform .bin/kustomize:
	GOWORK=off GOBIN=$(CURDIR)/.bin $(GO) -C $(<D) install tool
	@touch $@

# The test control plane (pkg/kubedev): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok, built from the Go module
# proxy once (about 20 minutes cold on 2 cores) into a version-keyed cache
# outside the repository ($$XDG_CACHE_HOME/vigil/k8s/<version>/bin, or
# $$VIGIL_K8S_BIN_DIR), and reused after that.
k8s-bins: ## Build the test Kubernetes control plane's binaries once (cached outside the repo)
	tools/k8s/build $(VIGIL_K8S_BIN_DIR)

# Generated code is committed; it is rebuilt from scratch so deleted protos
# leave no stale files behind.
generate: tools ## Regenerate pkg/gen and pkg/apidocs from proto/ (buf generate) and buf lint
	rm -rf pkg/gen
	rm -f pkg/apidocs/*.json
	buf generate
	buf lint

# Fails when the committed generated code differs from what `generate`
# produces, including files that generate adds but git does not track.
check-generated: generate ## Fail if pkg/gen or pkg/apidocs are not what `make generate` produces
	@stale=0; \
	git diff --exit-code --stat -- pkg/gen pkg/apidocs || stale=1; \
	untracked="$$(git ls-files --others --exclude-standard -- pkg/gen pkg/apidocs)"; \
	if [ -n "$$untracked" ]; then \
		echo "untracked generated files:"; echo "$$untracked" | sed 's/^/  /'; stale=1; \
	fi; \
	if [ "$$stale" != 0 ]; then \
		echo "check-generated: pkg/gen or pkg/apidocs is stale: run 'make generate' and commit the result" >&2; \
		exit 1; \
	fi; \
	echo "check-generated: pkg/gen and pkg/apidocs are up to date"

# Against the main branch; on main itself (or before main has a commit)
# against the previous commit; skipped when there is nothing to compare with
# (first commit, shallow clone) or the baseline has no buf.yaml yet.
buf-breaking: tools ## Check proto/ for breaking changes against main (or HEAD~1 on main)
	@head="$$(git rev-parse -q --verify 'HEAD^{commit}' || true)"; \
	main="$$(git rev-parse -q --verify 'refs/heads/main^{commit}' || true)"; \
	if [ -z "$$main" ]; then main="$$(git rev-parse -q --verify 'refs/remotes/origin/main^{commit}' || true)"; fi; \
	if [ -n "$$main" ] && [ "$$main" != "$$head" ]; then \
		base="$$main"; what="main ($$main)"; \
	elif prev="$$(git rev-parse -q --verify 'HEAD~1^{commit}')"; then \
		base="$$prev"; what="HEAD~1 ($$prev)"; \
	else \
		echo "buf-breaking: skipped: HEAD is main (or there is no main) and HEAD has no parent here (first commit or shallow clone)"; exit 0; \
	fi; \
	if ! git cat-file -e "$$base:buf.yaml" 2>/dev/null; then \
		echo "buf-breaking: skipped: $$what has no buf.yaml"; exit 0; \
	fi; \
	echo "buf-breaking: against $$what"; \
	buf breaking --against ".git#ref=$$base"

# The workspace builds every module with one version of each dependency
# (the highest any go.mod asks for); go.mod files that name others mislead a
# reader and a module built alone. Fix with `go get DEP@VERSION` in the
# modules listed, then `go mod tidy`.
versions: ## Fail if two modules' go.mod require different versions of one dependency
	@awk '/^require \(/ { block = 1; next } \
		block && /^\)/ { block = 0; next } \
		/^require [^(]/ { dep = $$2; ver = $$3 } \
		block && NF >= 2 && $$1 !~ /^\/\// { dep = $$1; ver = $$2 } \
		dep != "" && dep !~ /^github.com\/vigil-ops\// { \
			if (!((dep, ver) in where)) { n[dep]++; vers[dep] = vers[dep] " " ver } \
			where[dep, ver] = where[dep, ver] " " FILENAME } \
		{ dep = "" } \
		END { bad = 0; for (d in n) if (n[d] > 1) { bad = 1; split(substr(vers[d], 2), vs, " "); \
				for (i in vs) printf "%s %s in%s\n", d, vs[i], where[d, vs[i]] } \
			if (bad) { print "versions: one version per dependency across the workspace, please (see the Makefile)"; exit 1 } }' \
		$(foreach m,$(MODULES),$(m)/go.mod)
	@echo "versions: every module requires the same version of each dependency"

# Once per module (see the note at the top), all modules even after a failure.
lint: tools versions ## Run golangci-lint (.golangci.yml) over every module
	@status=0; \
	for m in $(MODULES); do \
		if [ -z "$$(find $$m -name '*.go' -print -quit)" ]; then echo "==> $$m: no Go files yet, skipped"; continue; fi; \
		echo "==> golangci-lint $$m"; \
		(cd $$m && golangci-lint run --config $(CURDIR)/.golangci.yml ./...) || status=1; \
	done; \
	exit $$status

build: ## Build the vigil binary into bin/vigil
	$(GO) build -o bin/vigil ./cmd/vigil

# Integration tests start real PostgreSQL, Alertmanager and Kubernetes
# binaries, hence deps and k8s-bins.
test: versions deps k8s-bins .bin/helm .bin/kubeconform ## Run every module's tests with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PACKAGES)

# The long chaos run: 200 groups, 8 crash-looping releases, the fault
# schedule four times (make test runs a short one). VIGIL_CHAOS_SEED=N
# replays a run's schedule.
chaos: deps k8s-bins ## Run the long split-mode chaos test (cmd/vigil/internal/chaos)
	VIGIL_CHAOS=long $(GO) test -count=1 -v -timeout 60m -run 'TestChaosSplitMode' ./cmd/vigil/internal/chaos

bench: ## Run every module's benchmarks (no tests)
	$(GO) test -run '^$$' -bench . -benchmem $(PACKAGES)

run: deps build ## Run every service in one process (./bin/vigil up)
	./bin/vigil up

fmt: tools ## Format the Go code with gofumpt and goimports (via golangci-lint fmt)
	@for m in $(MODULES); do \
		[ -n "$$(find $$m -name '*.go' -print -quit)" ] || continue; \
		(cd $$m && golangci-lint fmt --config $(CURDIR)/.golangci.yml ./...); \
	done
