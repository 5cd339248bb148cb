#!/usr/bin/env bash
# README command 2: install, start a throwaway PostGIS (and Chromium for browser tests),
# lint, and run the whole test suite against both stores.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
eval "$(./scripts/postgis.sh --export)"
./scripts/chromium.sh
ruff check .
set +e
python -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "no tests collected"; exit 1; fi
exit "$status"
