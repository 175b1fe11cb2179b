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

.PHONY: all build deps test vet fmt-check tidy-check unit bench-smoke demo bench bench-live clean package install docs

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

# go.mod and go.sum as go mod tidy leaves them.
tidy-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod or go.sum is not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...

# The packaging test (root: it installs the packages with dpkg, runs the
# programs under strace) runs on its own after the rest, so its load does
# not skew the timing of the cluster and listening tests running beside it.
unit:
	$(GO) test -race -timeout 30m $$($(GO) list ./... | grep -v '/packaging$$')
	$(GO) test -race -timeout 15m ./packaging

# One iteration of every benchmark, so they keep compiling and running.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

test: deps fmt-check tidy-check vet unit bench-smoke

# CONSOLE=1 keeps the demo running, the capture looping, until Ctrl-C.
demo: deps build
	@OUTPUT=$(OUTPUT) CONSOLE=$(CONSOLE) scripts/demo.sh

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Live capture against tcpdump on a veth (root): 5 runs with 2 tcpreplay
# senders and 5 with 4, each run's figures and the median ratio per
# configuration; about 3 minutes on a quiet machine. RUNS, SENDERS, CALLS,
# LOOPS, CAPTURER, WORKERS, PROFILE, PERF, STRACE: see bench/live/run.sh.
bench-live: deps build
	@if [ -x bench/live/run.sh ]; then bench/live/run.sh; else echo "bench/live/run.sh is not built yet"; exit 2; fi

# Debian packages (silentmon-common, silentmon-server, silentmon-supervisor)
# built with nfpm into out/packages/; packaging/mkpkg says what is in each.
package: build
	@rm -f out/packages/silentmon-*.deb
	$(GO) run ./packaging/mkpkg -bin $(BIN) -out out/packages

# The programs' man pages and shell completions, written by the programs
# themselves (their hidden __generate-docs argument), into out/docs/PROGRAM.
docs: build
	@for p in $(PROGRAMS); do rm -rf out/docs/$$p; $(BIN)/$$p __generate-docs out/docs/$$p || exit 1; done

# A plain install: programs, man pages, completions, the systemd units and
# the configuration file (kept if present). It creates no user: the
# packages do that (make package).
PREFIX       ?= /usr/local
DESTDIR      ?=
SYSCONFDIR   ?= /etc
UNITDIR      ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)

install: docs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/silentmon
	@for p in $(PROGRAMS); do \
		install -m 0755 $(BIN)/$$p $(DESTDIR)$(PREFIX)/bin/$$p && \
		install -m 0644 out/docs/$$p/man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/ && \
		install -m 0644 out/docs/$$p/completion/bash/$$p $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$p && \
		install -m 0644 out/docs/$$p/completion/zsh/_$$p $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$p && \
		install -m 0644 out/docs/$$p/completion/fish/$$p.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$p.fish \
		|| exit 1; \
	done
	@for u in smserver.service smsupervisor.service; do \
		sed -e 's|/usr/bin/|$(PREFIX)/bin/|g' -e 's|/etc/silentmon/|$(SYSCONFDIR)/silentmon/|g' \
			packaging/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/silentmon/silentmon.yaml ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/silentmon/silentmon.yaml"; \
	else \
		sed -e 's|/etc/silentmon/|$(SYSCONFDIR)/silentmon/|g' packaging/etc/silentmon.yaml > $(DESTDIR)$(SYSCONFDIR)/silentmon/silentmon.yaml && \
		chmod 0640 $(DESTDIR)$(SYSCONFDIR)/silentmon/silentmon.yaml; \
	fi
	@echo "installed into $(DESTDIR)$(PREFIX). The units run as the user silentmon, which a plain install does not create:"
	@echo "  useradd --system --user-group --home-dir /var/lib/silentmon --shell /usr/sbin/nologin silentmon"
	@echo "  install -d -o silentmon -g silentmon -m 0750 /var/lib/silentmon /var/lib/silentmon/recordings /var/log/silentmon"
	@echo "  install -d -o root -g silentmon -m 0750 $(SYSCONFDIR)/silentmon/security; chgrp silentmon $(SYSCONFDIR)/silentmon/silentmon.yaml"
	@echo "  smctl certs quickstart --dir $(SYSCONFDIR)/silentmon/security (a test set), then chown silentmon:silentmon $(SYSCONFDIR)/silentmon/security/Ctios*.pem"
	@echo "  edit $(SYSCONFDIR)/silentmon/silentmon.yaml, then: systemctl daemon-reload; systemctl enable --now smserver (or smsupervisor)"
	@echo "(make package builds Debian packages that do all of this.)"

clean:
	rm -rf $(BIN) out
