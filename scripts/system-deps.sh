#!/usr/bin/env bash
# System packages the project needs beside its Python wheels: espeak-ng speaks the synthetic
# calls that speech tests and benchmarks use. Installed when missing and we may (root, apt).
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: missing system packages: ${missing[*]} (install them, e.g. 'sudo apt-get install ${missing[*]}');" \
       "speech tests that need them will be skipped" >&2
fi
