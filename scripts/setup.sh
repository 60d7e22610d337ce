#!/usr/bin/env bash
# Creates .venv (once) and installs crackal with its test tools into it.
# torch/torchvision are pinned to the builds that pip finds on this machine's disk.
# --label-studio also creates .venv-label-studio/ (once) with the Label Studio server that
# tests/interop/test_label_studio_server.py starts; it pins ~20 packages (Django among them), so
# it has its own venv and never enters crackal's.
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_ALBUMENTATIONS_UPDATE=1
PYTHON="${PYTHON:-python3}"
LABEL_STUDIO_VERSION=1.23.2
with_label_studio=0
for arg in "$@"; do
  case "$arg" in
    --label-studio) with_label_studio=1 ;;
    *) echo "usage: $0 [--label-studio]" >&2; exit 2 ;;
  esac
done

# pip, quietly (the grep hides pip's notes about local index folders this machine does not have)
pip_install() {
  local venv=$1
  shift
  "$venv"/bin/python -m pip install --quiet --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.crackal-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  pip_install .venv -e '.[test]'
  # Label Studio's SDK checks crackal's brush RLE in the tests; only its pure-numpy converter is
  # used, so it comes without its ~70 dependencies (which would also pin numpy and opencv).
  pip_install .venv --no-deps 'label-studio-sdk==2.1.2'
  touch "$stamp"
fi

if [ "$with_label_studio" = 1 ]; then
  ls_stamp=.venv-label-studio/.label-studio-$LABEL_STUDIO_VERSION-installed
  if [ ! -f "$ls_stamp" ]; then
    if [ ! -x .venv-label-studio/bin/python ]; then
      "$PYTHON" -m venv .venv-label-studio
    fi
    echo "installing label-studio==$LABEL_STUDIO_VERSION into .venv-label-studio (once; a minute or two)" >&2
    pip_install .venv-label-studio "label-studio==$LABEL_STUDIO_VERSION"
    touch "$ls_stamp"
  fi
fi
