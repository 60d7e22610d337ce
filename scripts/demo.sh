#!/usr/bin/env bash
# The main job: synthetic data -> training -> evaluation -> prediction -> demo_output/report.md
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export NO_ALBUMENTATIONS_UPDATE=1
exec .venv/bin/crackal demo --out "${DEMO_OUT:-demo_output}" "$@"
