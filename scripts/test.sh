#!/usr/bin/env bash
# The test suite (fast tests and the few marked slow); extra arguments go to pytest,
# e.g. ./scripts/test.sh -m "not slow". It installs everything the tests need, Label Studio's
# server included (in .venv-label-studio/, for tests/interop/test_label_studio_server.py).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --label-studio
export NO_ALBUMENTATIONS_UPDATE=1
exec .venv/bin/python -m pytest "$@"
