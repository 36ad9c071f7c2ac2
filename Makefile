# chartsync Makefile. `make test` is the one test command: it installs the
# tools the tests need, then runs every test against real servers. A plain
# `go test ./...` without them skips what it cannot run and says why; with
# CI=true (as .ci/run sets) a missing tool fails instead.
PREFIX  ?= /usr
DESTDIR ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
LDFLAGS := -s -w -X main.version=$(VERSION)
TOOLS   := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)

.PHONY: all build test tools vet bench bench-index install deb clean

all: build

# build: chartsync, and chartsync-lint, the lint helper it runs for each
# new package (docs/install.md says where it looks for it).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/chartsync ./cmd/chartsync-lint

tools:
	./scripts/install-tools.sh

# vet needs no root: only staticcheck, a Go tool installed into .tools/bin.
vet: $(TOOLS)/staticcheck
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }

test: tools vet
	$(GO) test -count=1 -timeout 40m ./...

# bench runs the benchmarks on the generated repository and prints the
# side-by-side table of docs/benchmarks.md after their output.
bench: tools
	@mkdir -p bin
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./internal/bench/ > bin/bench.out 2>&1; \
	status=$$?; ./scripts/bench-table.sh < bin/bench.out; exit $$status

# Only the large-index benchmarks (issue 12); CHARTSYNC_BENCH_SIZES chooses
# the index sizes (default 20000,100000). Needs GNU time (/usr/bin/time).
bench-index: tools
	$(GO) test -run '^$$' -bench '^BenchmarkLargeIndex$$' -benchtime 3x -timeout 60m ./internal/bench/

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

install: build
	install -D -m 0755 bin/chartsync $(DESTDIR)$(PREFIX)/bin/chartsync
	install -D -m 0755 bin/chartsync-lint $(DESTDIR)$(PREFIX)/libexec/chartsync/chartsync-lint

# deb builds the Debian package (debian/) with the Go on PATH or in
# /usr/local/go (-d: Debian 12's golang-go is too old to satisfy
# Build-Depends) and moves the .deb, .buildinfo and .changes into dist/.
# Set GOPROXY=off to prove the build needs only the local module cache.
deb:
	dpkg-buildpackage -us -uc -b -d
	mkdir -p dist
	v=$$(dpkg-parsechangelog -S Version) && a=$$(dpkg-architecture -qDEB_HOST_ARCH) && \
	for f in $$(cut -d' ' -f1 debian/files) chartsync_$${v}_$${a}.changes; do mv ../$$f dist/; done

clean:
	rm -rf bin dist
