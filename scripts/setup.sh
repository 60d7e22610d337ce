#!/usr/bin/env bash
# Creates .venv (once) and installs crackal with its test tools into it.
# torch/torchvision are pinned to the builds that pip finds on this machine's disk.
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_ALBUMENTATIONS_UPDATE=1
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.crackal-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # (the grep hides pip's notes about local index folders this machine does not have)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  # Label Studio's SDK checks crackal's brush RLE in the tests; only its pure-numpy converter is
  # used, so it comes without its ~70 dependencies (which would also pin numpy and opencv).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps 'label-studio-sdk==2.1.2' \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  touch "$stamp"
fi
