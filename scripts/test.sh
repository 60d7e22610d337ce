#!/usr/bin/env bash
# The test suite (fast tests and the few marked slow); extra arguments go to pytest,
# e.g. ./scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export NO_ALBUMENTATIONS_UPDATE=1
exec .venv/bin/python -m pytest "$@"
