#!/usr/bin/env bash
# Sets up (if needed) and starts the app on the offline default: http://127.0.0.1:7860
# Extra arguments go to app.py (see `bash scripts/app.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
