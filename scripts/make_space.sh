#!/usr/bin/env bash
# Writes a Hugging Face Space folder (sdk: docker) for this repo into DIR; push DIR to the Space.
#   bash scripts/make_space.sh ../emolens-space
# The folder holds the files git tracks (the Dockerfile's build context) and this README with the
# Space's front matter on top: sdk docker, app_port = the Dockerfile's EXPOSE / EMO_PORT (a test
# checks they agree), CPU basic hardware (the offline models need ~1.2 GiB of memory).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: make_space.sh DIR}
mkdir -p "$dest"
git ls-files -z | xargs -0 -I{} cp --parents {} "$dest"/
{
  cat <<'EOF'
---
title: EmoLens
emoji: 🎭
colorFrom: indigo
colorTo: pink
sdk: docker
app_port: 7860
suggested_hardware: cpu-basic
short_description: Emotion in photos and videos, on CPU, offline
pinned: false
---

EOF
  cat README.md
} > "$dest/README.md"
echo "Space folder written to $dest"
