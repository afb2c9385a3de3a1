#!/usr/bin/env bash
# Installs everything kprof needs on a fresh Debian machine, idempotently:
#   system tools (strace, node, npm, jq, bc, socat, net-tools, chromium for the HTML report test,
#   gcc and gcc-multilib for the strace log tests, python3-venv, golang-go, bpftrace for the bpf backend)
#   with apt-get when missing,
#   the Python package and its dependencies in .venv/, oref0 (pinned in package-lock.json) with npm ci,
#   and kprof's pump tools (Go, profiler/pump/go) into build/rig-tools/<variant>/.
# Run as root for the apt-get step; as another user it says what to install and stops.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'setup: %s\n' "$*" >&2; }

# tool on PATH -> Debian package that provides it
declare -A PKG=([strace]=strace [node]=nodejs [npm]=npm [jq]=jq [bc]=bc [socat]=socat [netstat]=net-tools [chromium]=chromium [gcc]=gcc [go]=golang-go [bpftrace]=bpftrace)
missing=()
for tool in "${!PKG[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG[$tool]}")
done
# the strace log tests compile a 32-bit program (gcc -m32) that runs a 64-bit one: two personalities in one log
if [ "$(uname -m)" = x86_64 ] && ! dpkg -s gcc-multilib >/dev/null 2>&1; then missing+=(gcc-multilib); fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}"
    say "install them as root:  sudo apt-get install ${missing[*]}   then run ./setup.sh again"
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import profiler, ptrace, tabulate, yaml, system_calls, jsonschema, referencing, pytest, xdist' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.kprof-installed ]; then
  say "installing kprof and its Python dependencies into .venv"
  # compat mode: a plain .pth path entry, ~30 ms faster at every kprof start than the import-hook finder
  .venv/bin/python -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]'
  touch .venv/.kprof-installed
fi
# kprof's own bytecode, written once: Python reads existing .pyc files even with PYTHONDONTWRITEBYTECODE=1 (set in
# some CI and container images), which otherwise makes every kprof process recompile its modules (~0.1 s a run).
# Only stale files are rewritten; the __pycache__ directories are git-ignored.
.venv/bin/python -m compileall -q profiler
# jsonschema's verdict on each shipped scenario's text, kept in .venv (profiler/validated.py): kprof run of one of
# them need not load jsonschema (50-100 ms); a file edited since, or another schema or library version, is checked
# in full at every run, and kprof validate always checks in full
if ! out=$(.venv/bin/kprof validate --keep scenarios/*.yaml 2>&1 >/dev/null); then
  say "kprof validate --keep scenarios/*.yaml failed (a run of the files it names checks them in full):"
  printf '%s\n' "$out" >&2
fi

# kprof's pump tools (mdt, pumphistory, listen, mmtune), one directory per radio variant: uart (/dev/serial0),
# spi (Raspberry Pi + Explorer HAT) and edison (Explorer Board). Built with cgo (dynamically linked against
# glibc, as ecc1's real tools are), offline (standard library only), rebuilt only when a source is newer.
build_rig_tools() {
  local root src out variant tags
  root=$(pwd) src=profiler/pump/go out=build/rig-tools
  for variant in uart spi edison; do
    case $variant in uart) tags=uart ;; spi) tags=spi ;; edison) tags=edison ;; esac
    if [ -x "$out/$variant/mmtune" ] && [ -z "$(find "$src" -newer "$out/$variant/mmtune" -print -quit)" ]; then
      continue
    fi
    say "building the pump tools ($variant) into $out/$variant"
    rm -rf "$out/$variant.new" && mkdir -p "$out/$variant.new"
    (cd "$src" && env GOCACHE="$root/build/go-cache" GOPATH="$root/build/go-path" \
       GOFLAGS= GOPROXY=off GO111MODULE=on CGO_ENABLED=1 \
       go build -trimpath -buildvcs=false -tags "$tags" -o "$root/$out/$variant.new/" ./cmd/...)
    ln -s mmtune "$out/$variant.new/Go-mmtune"   # the name oref0 (oref0-mmtune.sh) runs it by, as a rig installs it
    rm -rf "$out/$variant" && mv "$out/$variant.new" "$out/$variant"
  done
}
build_rig_tools

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing oref0 (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
say "ready: $(.venv/bin/kprof --version), $(go version | cut -d' ' -f3), oref0 $(node -p 'require("./node_modules/oref0/package.json").version'), $(strace -V | head -1)"
