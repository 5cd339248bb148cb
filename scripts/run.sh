#!/usr/bin/env bash
# README command 1: demo province -> ingest (embedded store) -> build the layers -> serve the
# map on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
export RISKMAP_STORE=${RISKMAP_STORE:-./var/riskmap}
EQUIPMENT=${EQUIPMENT:-50000}
# the demo files, and one demo user per role whose tokens are printed once: keep them for
# the login page (a local demo convenience; the store holds only their hashes)
mkdir -p var
umask 077
riskmap demo --province 河南省 --equipment "$EQUIPMENT" --seed 7 --out var/demo \
  | tee var/demo-users.txt
umask 022
# the demo holds deliberately bad rows: exit 1 (some rows rejected, the rest loaded) is
# expected; 2 (a file refused, nothing loaded) stops here
riskmap ingest var/demo/*.csv var/demo/*.xlsx var/demo/*.geojson var/demo/*.gpkg \
  --report var/ingest-report.json || [ $? -eq 1 ]
# the demo's "today" is fixed (its due dates and hazards are relative to it): build for it
AS_OF=$(python -c 'import json; print(json.load(open("var/demo/MANIFEST.json"))["as_of"])')
riskmap build --as-of "$AS_OF"
# the province-wide map's tiles at z8–z12 rendered ahead (their first viewer reads them
# from the store), in the background: the map serves at once, drawing what is not seeded yet
(riskmap seed > var/seed.log 2>&1 &)
echo "登录 log in at http://127.0.0.1:${PORT:-8000}/login with a token from var/demo-users.txt:"
# each role lands on its own page: regulator and planner /map, grid_officer /grid,
# park_admin their park's page
grep -E '^  (admin|regulator|grid_officer|park_admin|planner) ' var/demo-users.txt || true
exec riskmap serve --host 127.0.0.1 --port "${PORT:-8000}"
