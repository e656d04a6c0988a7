# bmsgw make targets. `make test` is the README's test command: it
# installs missing test dependencies, then runs every check and test.

GO ?= go
PKGS := ./...

.PHONY: all build test deps lint unit benchsmoke bench demo plan schema

all: build

build:
	$(GO) build -o bmsgw ./cmd/bmsgw

deps:
	./.ci/install-test-deps

lint:
	@out="$$(gofmt -l cmd adapters internal docs testdata)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 $(PKGS)

# Every benchmark runs once so that none rots; numbers come from `make bench`.
benchsmoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 $(PKGS)

test: deps lint unit benchsmoke

bench:
	./.ci/bench

# Regenerate the JSON Schemas of the YAML files after changing internal/config/types.go.
schema:
	$(GO) test ./internal/config -run TestSchemaUpToDate -update

demo:
	$(GO) run ./cmd/bmsgw run -c configs/demo.yaml

plan:
	$(GO) run ./cmd/bmsgw plan -c configs/season.yaml --site valby-skole --from 2026-11-26 --to 2026-11-27
