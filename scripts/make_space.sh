#!/usr/bin/env bash
# Writes a Hugging Face Space folder (sdk: docker) for this repo into DIR; push DIR to the Space.
#   bash scripts/make_space.sh ../emolens-space
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: make_space.sh DIR}
mkdir -p "$dest"
git ls-files -z | xargs -0 -I{} cp --parents {} "$dest"/
{
  printf -- '---\ntitle: EmoLens\nemoji: 🎭\nsdk: docker\napp_port: 7860\npinned: false\n---\n\n'
  cat README.md
} > "$dest/README.md"
echo "Space folder written to $dest"
