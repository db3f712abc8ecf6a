#!/usr/bin/env bash
# Runs every check of the project, as CI does: installs redis-server when it is missing, then
# gofmt, go vet and go test -race in the library and in every nested module (bench/, examples with
# their own go.mod).
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server for every test; a C compiler for the chaos suite's fast-clock library
# (internal/redistest.WithClockRate).
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
if [ -n "$missing" ]; then
  echo "== installing$missing (Debian packages)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
echo "== $(redis-server --version | cut -d' ' -f1-3), $(go version)"

echo "== gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# internal/testprogress runs go test -json per package, two at a time as go test would on 2 CPUs,
# and prints a line per package as it ends, the output of every failing test, and a line when a
# package has been quiet for 30 seconds (go test itself holds back all but one package's output).
progress="$(mktemp -d)/testprogress"
go build -o "$progress" ./internal/testprogress
start=$(date +%s)

# Every module: the root first, then the nested ones.
modules=". $(find . -mindepth 2 -name go.mod -not -path './.git/*' -exec dirname {} \; | sort | tr '\n' ' ')"
for mod in $modules; do
  echo "== $mod: go vet"
  (cd "$mod" && go vet ./...)
  echo "== $mod: go test -race"
  (cd "$mod" && "$progress" -race -count=1 -timeout 10m ./...)
done
echo "== all checks passed in $(( $(date +%s) - start ))s"
