#!/usr/bin/env bash
# Builds the Space image without Docker, on a clean Debian root, and checks that the app it holds works.
#
#   sudo bash scripts/check_space_build.sh            # 11-27 min measured on 2 shared cores; root, ~15 GB free
#   KEEP_ROOT=1 bash scripts/check_space_build.sh     # keep the built root afterwards (path printed)
#
# What it does, each phase timed:
#   1. base   `debootstrap --variant=minbase bookworm` into a temporary folder, then the packages the
#             Dockerfile's base image python:3.11-slim-bookworm adds to debian:bookworm-slim (Python
#             3.11 with venv and pip, ca-certificates, netbase, tzdata), with debian-slim's dpkg and
#             apt settings (no docs, man pages or locales; no kept .deb files; no package lists).
#             Equivalent for this build: same Debian release (glibc 2.36, the same libraries from the
#             same mirror), same Python minor version (Debian's 3.11.2 where the image compiles the
#             latest 3.11.x into /usr/local; every wheel here is cp311/abi3 for glibc), and no compiler,
#             so whatever the Dockerfile needs it has to install itself.
#   2. replay each step of the Dockerfile, read by scripts/dockerfile_steps.py (so this script and
#             the Dockerfile cannot drift apart): RUN through `chroot` + `/bin/sh -c` as the current
#             USER, in the current WORKDIR, with ENV/ARG; COPY from the folder scripts/make_space.sh
#             writes (what the Space repository holds), less .dockerignore; WORKDIR created by root
#             when missing, as Docker's classic builder does.
#   3. size   of the root (du), with and without apt caches, and its largest parts.
#   4. serve  the Dockerfile's CMD inside the root on a free loopback port; waits until the page
#             answers; one /analyze_image call through gradio_client (a known photo must come back
#             "happy" with one face); one /analyze_video with its reason (a clip made from that photo
#             with the bundled ffmpeg); imports of every native module; a few tokens from the small
#             language model (the llama.cpp the build compiled).
# The root reaches only Debian's mirror and PyPI, like a fresh machine: no pip configuration of this
# host goes in. If the host trusts extra certificate authorities (a TLS-inspecting proxy), those and
# the host's proxy variables are passed through, since nothing could be downloaded otherwise.
# On exit (also on failure or Ctrl-C) the app is stopped, /proc, /sys and /dev are unmounted and the
# temporary folder removed (kept with KEEP_ROOT=1, or when something is still mounted inside it).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
expected_base=python:3.11-slim-bookworm
base_packages=(python3 python3-venv python3-pip python-is-python3 ca-certificates netbase tzdata)
serve_timeout=${SERVE_TIMEOUT:-600}
keep_root=${KEEP_ROOT:-0}
docker_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

[ "$(id -u)" = 0 ] || { echo "check_space_build: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "check_space_build: needs python3 to read the Dockerfile" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/space-build.XXXXXX")
root=$work/root
context=$work/context
app_pid=""
phase_names=()
phase_seconds=()
report=()
started=$(date +%s.%N)

say() { printf '\n== %s\n' "$*"; }
elapsed_since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }
timed() {  # timed NAME COMMAND...: runs the command and records how long it took
  local name=$1 t0; shift
  t0=$(date +%s.%N)
  say "$name"
  "$@"
  phase_names+=("$name")
  phase_seconds+=("$(elapsed_since "$t0")")
  echo "-- $name: ${phase_seconds[-1]} s"
}

mounts_below() { awk -v prefix="$root/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r; }

summary() {
  echo
  echo "== summary"
  local i
  for i in "${!phase_names[@]}"; do printf '%-52s %8s s\n' "${phase_names[$i]}" "${phase_seconds[$i]}"; done
  printf '%-52s %8s s\n' "total wall time" "$(elapsed_since "$started")"
  for i in "${report[@]}"; do echo "$i"; done
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$app_pid" ]; then
    kill -- "-$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
  fi
  local mount
  for mount in $(mounts_below); do umount "$mount" 2>/dev/null || umount -l "$mount" || true; done
  summary
  if [ -n "$(mounts_below)" ]; then
    echo "check_space_build: still mounted below $root, left in place:" >&2
    mounts_below >&2
  elif [ "$keep_root" = 1 ]; then
    echo "root kept: $root (remove with: rm -rf --one-file-system $work)"
  else
    rm -rf --one-file-system "$work"
  fi
  [ "$status" = 0 ] && echo "check_space_build: OK" || echo "check_space_build: FAILED (exit $status)" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_root() {  # in_root COMMAND...: as root inside the root, with a clean environment
  chroot "$root" /usr/bin/env -i PATH="$docker_path" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# ---------------------------------------------------------------- 0. what is to be replayed
steps_file=$work/steps
python3 scripts/dockerfile_steps.py --shell Dockerfile > "$steps_file"
from_line=$(python3 scripts/dockerfile_steps.py Dockerfile | awk '$1 == "FROM" { print $2 }')
if [ "$from_line" != "$expected_base" ]; then
  echo "check_space_build: the Dockerfile starts FROM $from_line; this check emulates only $expected_base" >&2
  exit 1
fi
free_gb=$(df -Pk "$work" | awk 'NR == 2 { print int($4 / 1048576) }')
[ "$free_gb" -ge 15 ] || echo "check_space_build: warning: only ${free_gb} GB free under $work; the build needs ~15 GB"
echo "working in $work"

# ---------------------------------------------------------------- 1. the base image
install_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; }
}

bootstrap() {
  debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log"; return 1; }
  tail -1 "$work/debootstrap.log"
}

mount_api_filesystems() {
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"  # an unmount inside never reaches the host's /dev
}

configure_like_debian_slim() {
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # debian:bookworm-slim's dpkg and apt settings: no documentation, and no .deb files kept after install
  cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' > "$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\n' > "$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::Install-Recommends "false";\n' > "$root/etc/apt/apt.conf.d/docker-no-recommends-for-base"
  # a container starts no services; neither may a package's install script in this chroot
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}

install_python_like_the_image() {
  in_root apt-get update -q
  in_root apt-get upgrade -y -q  # the published image is rebuilt with the point release and security updates
  in_root apt-get install -y -q --no-install-recommends "${base_packages[@]}"
  rm -f "$root/etc/apt/apt.conf.d/docker-no-recommends-for-base"  # the Dockerfile says so itself
  in_root apt-get clean
  rm -rf "$root"/var/lib/apt/lists/*
  in_root python3 --version
}

network_env=()
pass_through_host_network() {
  local cert found=0
  for cert in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$cert" ] || continue
    cp "$cert" "$root/usr/local/share/ca-certificates/"
    found=1
  done
  if [ "$found" = 1 ]; then
    in_root update-ca-certificates > /dev/null
    # pip's own certificate bundle does not hold a local authority; the system bundle now does
    network_env+=("PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
    echo "host trusts extra certificate authorities: passed into the root"
  fi
  local name
  for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!name:-}" ] && network_env+=("$name=${!name}")
  done
  return 0
}

timed "install debootstrap (host)" install_debootstrap
timed "base: debootstrap --variant=minbase $suite" bootstrap
mount_api_filesystems
configure_like_debian_slim
timed "base: apt-get upgrade, install Python 3.11 & co" install_python_like_the_image
pass_through_host_network
base_mb=$(du -sxm "$root" | cut -f1)
report+=("base root ($expected_base equivalent): ${base_mb} MiB")

# ---------------------------------------------------------------- 2. the Dockerfile's steps
declare -A build_env=()
build_env_order=()
user_name=root
user_ids=0:0
workdir=/
exposed=""
start_command=""

set_build_env() {  # set_build_env KEY=VALUE: later values win, first-set order kept
  local key=${1%%=*}
  [ -n "${build_env[$key]+set}" ] || build_env_order+=("$key")
  build_env[$key]=${1#*=}
}

step_env() {  # the environment a RUN or CMD sees: Docker's defaults, the host's network, ENV and ARG
  local home key
  home=$(chroot "$root" getent passwd "${user_ids%%:*}" | cut -d: -f6)
  printf '%s\0' "PATH=$docker_path" "HOME=${home:-/root}" "LANG=C.UTF-8" "${network_env[@]}"
  for key in "${build_env_order[@]}"; do printf '%s\0' "$key=${build_env[$key]}"; done
}

run_in_image() {  # run_in_image COMMAND [KEY=VALUE...]: /bin/sh -c COMMAND as USER in WORKDIR
  local command=$1 environment=()
  shift
  mapfile -d '' environment < <(step_env)
  chroot --userspec="$user_ids" "$root" /usr/bin/env -i "${environment[@]}" "$@" \
    /bin/sh -c 'cd "$1" || exit 1; exec /bin/sh -c "$2"' sh "$workdir" "$command" < /dev/null
}

in_workdir() { case $1 in /*) echo "$1" ;; *) echo "${workdir%/}/$1" ;; esac; }

step_FROM() { echo "FROM $1: the base root built above"; }
step_LABEL() { :; }
step_EXPOSE() { exposed=${1%/tcp}; }
step_CMD() { start_command=$1; }
step_ENV() { local pair; for pair in "$@"; do set_build_env "$pair"; done; }
step_ARG() { local pair; for pair in "$@"; do [[ $pair == *=* ]] && set_build_env "$pair"; done; return 0; }
step_RUN() { run_in_image "$1"; }

step_USER() {
  local name=${1%%:*} group=${1#*:} uid gid
  uid=$(chroot "$root" id -u "$name")
  if [ "$group" = "$1" ]; then gid=$(chroot "$root" id -g "$name"); else gid=$(chroot "$root" getent group "$group" | cut -d: -f3); fi
  user_name=$name
  user_ids=$uid:$gid
}

step_WORKDIR() {
  workdir=$(in_workdir "$1")
  [ -d "$root$workdir" ] || mkdir -p "$root$workdir"  # by root, as the classic builder does
}

excludes=()
dockerignore_as_tar_excludes() {
  # "**/name" is name at any depth (tar's unanchored match); any other pattern is relative to the
  # context's top (anchored), so "data" leaves emo_core/data alone, as Docker does
  local pattern
  excludes=()
  [ -f "$context/.dockerignore" ] || return 0
  while IFS= read -r pattern || [ -n "$pattern" ]; do
    pattern=${pattern%/}
    case $pattern in
      ''|'#'*) ;;
      '!'*) echo ".dockerignore exception $pattern is not replayed" >&2; return 1 ;;
      '**/'*) excludes+=(--no-anchored "--exclude=${pattern#\*\*/}") ;;
      *) excludes+=(--anchored "--exclude=./${pattern#/}") ;;
    esac
  done < "$context/.dockerignore"
}

step_COPY() {
  local owner="" arguments=() source target staging
  while [ $# -gt 0 ]; do
    case $1 in
      --chown=*) owner=${1#--chown=} ;;
      --*) echo "COPY flag $1 is not replayed" >&2; return 1 ;;
      *) arguments+=("$1") ;;
    esac
    shift
  done
  target=$(in_workdir "${arguments[-1]}")
  unset 'arguments[-1]'
  dockerignore_as_tar_excludes
  staging=$work/copy
  for source in "${arguments[@]}"; do
    case $source in /*|..|../*|*/../*) echo "COPY source $source leaves the build context" >&2; return 1 ;; esac
    rm -rf "$staging" && mkdir -p "$staging"
    if [ -d "$context/$source" ]; then
      tar -C "$context/$source" "${excludes[@]}" -cf - . | tar -C "$staging" -xf -
    else
      cp -p "$context/$source" "$staging/"
    fi
    if [ -n "$owner" ]; then
      chown -R "$(chroot "$root" id -u "${owner%%:*}"):$(chroot "$root" id -g "${owner%%:*}")" "$staging"
    fi
    mkdir -p "$root$target"
    cp -a "$staging/." "$root$target/"
  done
  rm -rf "$staging"
}

replay() {
  local step
  while IFS= read -r -d '' step <&3; do
    echo "-- ${step:0:160}"
    case $step in
      RUN\ *) timed "Dockerfile: ${step:0:60}" eval "step_$step" ;;
      *) eval "step_$step" ;;  # words are shell-quoted by dockerfile_steps.py
    esac
  done 3< "$steps_file"
}

make_context() { bash scripts/make_space.sh "$context" > /dev/null; }
timed "build context: scripts/make_space.sh" make_context
timed "Dockerfile steps (all)" replay
echo "USER $user_name ($user_ids), WORKDIR $workdir, EXPOSE $exposed, CMD $start_command"

# ---------------------------------------------------------------- 3. the image's size
measure() {
  local total apt_cache venv cache
  total=$(du -sxm "$root" | cut -f1)
  apt_cache=$(du -scxm "$root/var/cache/apt" "$root/var/lib/apt/lists" | tail -1 | cut -f1)
  venv=$(du -sxm "$root$workdir/.venv" | cut -f1)
  cache=$(du -sxm "$root$(chroot "$root" getent passwd "${user_ids%%:*}" | cut -d: -f6)/.cache" 2>/dev/null | cut -f1 || echo 0)
  report+=("image root: $(du -sxh "$root" | cut -f1) (${total} MiB); without apt caches: $((total - apt_cache)) MiB")
  report+=("  of which: .venv ${venv} MiB, user cache (GGUF files) ${cache:-0} MiB, the rest (Debian, toolchain, app) $((total - venv - ${cache:-0})) MiB")
  report+=("  the Dockerfile added $((total - base_mb)) MiB to the base")
  echo "largest installed Python distributions:"
  du -sxm "$root$workdir"/.venv/lib/python3*/site-packages/* | sort -rn | head -12
}
timed "size" measure

# ---------------------------------------------------------------- 4. the app inside the image
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
start_app() {
  # the Dockerfile listens on 0.0.0.0; here the root shares the host's network, so loopback only.
  # Job control gives the app its own process group, so cleanup stops it with its worker processes.
  set -m
  run_in_image "$start_command" EMO_HOST=127.0.0.1 "EMO_PORT=$port" > "$work/app.log" 2>&1 &
  app_pid=$!
  set +m
  local deadline=$((SECONDS + serve_timeout))
  until curl -fs -o /dev/null "http://127.0.0.1:$port/"; do
    if ! kill -0 "$app_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "the app did not answer on port $port; its log:" >&2
      tail -40 "$work/app.log" >&2
      return 1
    fi
    sleep 1
  done
  curl -fsS "http://127.0.0.1:$port/" | grep -q '"title":"EmoLens"' || { echo "the page is not EmoLens" >&2; return 1; }
  echo "page answers: http://127.0.0.1:$port/"
}

cat > "$root/tmp/check_client.py" <<'EOF'
"""One image analysis through the app's API, as a visitor's client would make it."""
import sys
import time

from gradio_client import Client, handle_file

client = Client(sys.argv[1], verbose=False)
began = time.perf_counter()
answer, boxed, chart, cues, result = client.predict(handle_file("assets/astronaut.jpg"), "fer7",
                                                    api_name="/analyze_image")
took = time.perf_counter() - began
assert result["label"] == "happy" and len(result["faces"]) == 1, result
print(f"/analyze_image answered in {took:.1f} s: {answer.splitlines()[0][:100]}")
EOF
cat > "$root/tmp/check_video.py" <<'EOF'
"""One video analysis with its reason: the same photo as a 3 s clip with a tone (the bundled ffmpeg,
mediapipe, the AU proxies, silero-vad on onnxruntime, and the small language model in its worker)."""
import os
import subprocess
import sys
import tempfile
import time

import imageio_ffmpeg
from gradio_client import Client, handle_file

clip = os.path.join(tempfile.mkdtemp(), "check_clip.mp4")
subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-i", "assets/astronaut.jpg",
                "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000", "-t", "3", "-r", "10",
                "-vf", "scale=320:-2", "-pix_fmt", "yuv420p", clip], check=True)
client = Client(sys.argv[1], verbose=False)
began = time.perf_counter()
answer, peak, au_chart, voice_chart, transcript, merr, merr_file = client.predict(
    handle_file(clip), "mer2023", "reason", api_name="/analyze_video")
took = time.perf_counter() - began
assert "Predicted emotion:" in answer and merr["pseu_emotion"] and merr["smp_reason_caption"].strip(), (answer, merr)
print(f"/analyze_video answered in {took:.1f} s: {merr['pseu_emotion']}; reason: {merr['smp_reason_caption'][:100]!r}")
EOF
cat > "$root/tmp/check_small_lm.py" <<'EOF'
"""A few tokens from the small language model, through the llama.cpp that was compiled in the build,
after importing every module with a native library the app loads (a missing system library shows here)."""
import importlib

for name in ("cv2", "mediapipe", "torch", "onnxruntime", "ctranslate2", "faster_whisper", "av", "soundfile",
             "soxr", "h5py", "librosa", "llama_cpp"):
    importlib.import_module(name)

from emo_core import Settings
from emo_core.llm.small_lm import get_small_lm

lm = get_small_lm(Settings.from_env())
text = lm.complete("A smiling face in a photo usually means", max_tokens=12)
stats = lm.stats
assert stats.completion_tokens > 0, stats
print(f"small LM wrote {stats.completion_tokens} tokens at {stats.tokens_per_second:.0f} tokens/s: {text.strip()!r}")
EOF
chmod 644 "$root"/tmp/check_*.py

timed "serve: CMD until the page answers" start_app
timed "serve: one /analyze_image via gradio_client" \
  run_in_image ".venv/bin/python /tmp/check_client.py http://127.0.0.1:$port/" HF_HUB_OFFLINE=1
timed "serve: one /analyze_video (reason) via gradio_client" \
  run_in_image ".venv/bin/python /tmp/check_video.py http://127.0.0.1:$port/" HF_HUB_OFFLINE=1
timed "imports + small language model (llama.cpp) generates" \
  run_in_image ".venv/bin/python /tmp/check_small_lm.py" "PYTHONPATH=$workdir"
ready=$(grep -o 'models ready in [0-9.]* s' "$work/app.log" | head -1 || true)
report+=("app: page served ${phase_seconds[-4]} s after CMD started; warm-up log: ${ready:-no 'models ready' line}")
