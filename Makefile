# govs build, test and generate targets. `make help` lists them.

GO      ?= go
# The BPF objects are built by clang-14, pinned in
# internal/dataplane/ebpf/gen.go: the committed objects are reproduced byte
# for byte only by that version (Debian bookworm's clang-14 package).

PKGS    := ./...

.PHONY: help build demo test test-unit deps vet lint generate check-generate clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build govsd and govsadm into bin/
	$(GO) build -o bin/ ./cmd/...

demo: ## run the demo director on the embedded default config
	$(GO) run ./cmd/govsd --demo

deps: ## install the Debian packages the tests need (only what is missing)
	@scripts/deps.sh

vet: ## go vet, also for a non-Linux target (the OS split must build)
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) vet $(PKGS)

test: deps vet ## the whole suite: unit tests with -race, BPF fixture and namespace tests (root)
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

test-unit: ## unit tests only (no root needed; privileged tests skip with a message)
	$(GO) test -race -short $(PKGS)

lint: vet ## vet plus gofmt
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

generate: ## regenerate BPF objects and Go bindings (needs clang-14)
	$(GO) generate $(PKGS)

check-generate: generate ## fail if generated files differ from what is committed
	@test -z "$$(git status --porcelain)" || { git status --short; echo "generated files are stale or untracked: run make generate and commit"; exit 1; }

clean: ## remove build output
	rm -rf bin/
