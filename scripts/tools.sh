#!/usr/bin/env bash
# Installs what hk needs into the project (nu from npm, the built plugin, a project-local plugin
# registry) and, with --test, what the tests need (openssh-server, Elixir). Idempotent; safe on a bare machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf '== %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

NU="$root/tools/node_modules/@nushell/linux-x64/bin/nu"
if [ ! -x "$NU" ] || [ "$("$NU" --version 2>/dev/null)" != "0.115.1" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  say "installing nu 0.115.1 (npm package nushell) into tools/"
  (cd tools && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The qemu instance backend. This machine kind may carry a newer qemu-utils (backports) than the
# qemu-system-x86 its apt sources offer; take the matching pair.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v zstd >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "apt-get install qemu-system-x86 qemu-utils mmdebstrap zstd (the qemu instance backend)"
  $sudo apt-get update -qq >/dev/null
  qemu_version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --allow-downgrades \
    qemu-system-x86 "qemu-utils=$qemu_version" mmdebstrap zstd >/dev/null
fi

if [ "$want_test" = 1 ]; then
  # The Elixir tests build a Mix release here (the guest needs none of it: a release carries ERTS).
  apt_install openssh-server sudo elixir erlang-nox tmux
fi

say "building the hk plugin and the example app"
cargo build --quiet -p nu_plugin_hk -p hello

mkdir -p .hk
"$NU" -n -c "plugin add --plugin-config '$root/.hk/plugins.msgpackz' '$root/target/debug/nu_plugin_hk'"
