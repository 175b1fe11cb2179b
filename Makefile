# silentmon: the two commands are `make demo` and `make test`; both install
# what they need first (`make deps`).

SHELL        := /bin/bash
export PATH  := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO           ?= go
BIN          := bin
PROGRAMS     := smserver smsupervisor smctl smnic
OUTPUT       ?= wav
CONSOLE      ?=
BENCHTIME    ?= 1s

.PHONY: all build deps test vet fmt-check unit bench-smoke demo bench bench-live clean

all: build

deps:
	@scripts/deps.sh

# --version: the commit and its date, when built from a git checkout.
VERSION_PKG  := github.com/silentmon/silentmon/internal/version
LDFLAGS      := -X $(VERSION_PKG).commit=$(shell git rev-parse --short=12 HEAD 2>/dev/null) \
                -X $(VERSION_PKG).date=$(shell git log -1 --format=%cI 2>/dev/null)

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/... ./bench/cmd/...
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/smserver ./cmd/smnic

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...

unit:
	$(GO) test -race -timeout 30m ./...

# One iteration of every benchmark, so they keep compiling and running.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

test: deps fmt-check vet unit bench-smoke

# CONSOLE=1 keeps the demo running, the capture looping, until Ctrl-C.
demo: deps build
	@OUTPUT=$(OUTPUT) CONSOLE=$(CONSOLE) scripts/demo.sh

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

bench-live: deps build
	@if [ -x bench/live/run.sh ]; then bench/live/run.sh; else echo "bench/live/run.sh is not built yet"; exit 2; fi

clean:
	rm -rf $(BIN) out
