# Conveniences over the project's own scripts; every target also works
# without make (see README.md).
.PHONY: all build test lint bench run clean

all: build

build:
	go build -o bin/ ./appliance/cmd/...

test:
	tests/run

lint:
	tests/setup
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...
	$$(go env GOPATH)/bin/staticcheck ./...

bench:
	go run ./tests/bench -out docs/benchmarks.md

run:
	go run ./appliance/cmd/cairnd

clean:
	rm -rf bin
