#!/usr/bin/env bash
# One-command set-up of the pinned OpenMMLab stack in <repo>/.venv.
#
#   bash tools/setup_env.sh [--wheelhouse DIR] [--python PY] [--force]
#
# - creates .venv (git-ignored) and installs the pins from requirements/*.txt:
#   torch 2.13.0 (registry build), torchvision 0.28.0, mmcv 2.1.0 with ops, mmengine 0.10.7,
#   mmpose 1.3.2 + mmdet 3.3.0 (--no-deps), numpy<2, opencv-contrib-python-headless 4.10.0.84, dlib-bin, setuptools>=77,<81,
#   openmim 0.3.9 with pandas 2.3.3 / opendatalab 0.0.9 (requirements/openmim.txt), onnx + onnxruntime,
#   and mmstable in editable mode;
# - takes mmcv from a wheelhouse when one is given (default: ../shared/wheelhouse if it exists) or
#   from the wheel cache ($MMSTABLE_WHEEL_CACHE, default ~/.cache/mmstable/wheels); otherwise builds
#   it from source (~25 min on 2 cores) and keeps the built wheel in that cache;
# - on a ready .venv whose requirement files are unchanged it only re-runs the import check;
# - exits non-zero with a plain message when the final import check (or `mim list`) fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
WHEELHOUSE="${MMSTABLE_WHEELHOUSE:-}"
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) WHEELHOUSE="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "setup_env.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$WHEELHOUSE" ] && [ -d "$ROOT/../shared/wheelhouse" ]; then
  WHEELHOUSE="$(cd "$ROOT/../shared/wheelhouse" && pwd)"
fi
CACHE="${MMSTABLE_WHEEL_CACHE:-$HOME/.cache/mmstable/wheels}/torch-2.13.0"
mkdir -p "$CACHE"

CHECK='import torch, torchvision, mmcv.ops, mmengine, mmpose.models, mmdet, mmstable, cv2.face, dlib, onnx, onnxruntime'
check_imports() {
  if ! "$VENV/bin/python" -c "$CHECK" 2>"$VENV/import-check.log"; then
    echo "setup_env.sh: the final check failed: python -c '$CHECK'" >&2
    tail -n 5 "$VENV/import-check.log" >&2
    echo "setup_env.sh: full log in $VENV/import-check.log; re-run with --force to reinstall." >&2
    return 1
  fi
  # `mim list` imports pandas: a pandas built for another numpy fails here, not at import time.
  if ! "$VENV/bin/mim" list >"$VENV/mim-check.log" 2>&1; then
    echo "setup_env.sh: \`$VENV/bin/mim list\` failed (pins in requirements/openmim.txt):" >&2
    tail -n 5 "$VENV/mim-check.log" >&2
    echo "setup_env.sh: re-run with --force to reinstall." >&2
    return 1
  fi
  echo "setup_env.sh: .venv ready ($("$VENV/bin/python" -c 'import torch, mmcv, mmpose, mmengine; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmpose {mmpose.__version__}")'))"
}

STAMP="$VENV/.mmstable-stamp"
want_stamp="$(cat "$ROOT"/requirements/*.txt "$ROOT/setup.cfg" "$0" | sha256sum | cut -d' ' -f1)"
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
  check_imports && exit 0
  echo "setup_env.sh: .venv was ready but no longer imports; reinstalling." >&2
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"

echo "setup_env.sh: installing torch/torchvision (first time: ~4 min, 4.8 GB)"
"${PIP[@]}" install -q -r "$ROOT/requirements/torch.txt" -r "$ROOT/requirements/runtime.txt" \
  -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/openmim.txt"
# One OpenCV package: mmengine's requirement pulls in opencv-python, which shares the cv2 folder with the
# contrib build (cv2.face, the LBF teacher of issue 11): remove it, then restore the contrib build's files.
if "$VENV/bin/python" -m pip show -q opencv-python 2>/dev/null; then
  "${PIP[@]}" uninstall -q -y opencv-python
  "${PIP[@]}" install -q --no-deps --force-reinstall "$(grep -E '^opencv-contrib-python-headless==' "$ROOT/requirements/runtime.txt")"
fi
# Guard against the local CPU torch sneaking in: torchvision would not import with it.
"$VENV/bin/python" -c 'import torchvision' || {
  echo "setup_env.sh: torchvision does not import with the installed torch (the local +cpu build?)." >&2
  exit 1; }

MMCV_SPEC="$(grep -E '^mmcv==' "$ROOT/requirements/mminstall.txt")"
MMCV_VER="${MMCV_SPEC#mmcv==}"
FIND=(--find-links "$CACHE")
[ -n "$WHEELHOUSE" ] && FIND+=(--find-links "$WHEELHOUSE")
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VER')" 2>/dev/null; then
  if ! "${PIP[@]}" install -q --no-deps --no-index --only-binary=mmcv "${FIND[@]}" "$MMCV_SPEC" 2>/dev/null; then
    echo "setup_env.sh: no mmcv $MMCV_VER wheel in ${WHEELHOUSE:-<no wheelhouse>} or $CACHE;" \
      "building from source with ops (~25 min on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "${PIP[@]}" wheel --no-deps --no-build-isolation \
      -w "$CACHE" "$MMCV_SPEC"
    "${PIP[@]}" install -q --no-deps --no-index "${FIND[@]}" "$MMCV_SPEC"
  fi
fi
"${PIP[@]}" install -q --no-deps $(grep -vE '^(#|mmcv==|$)' "$ROOT/requirements/mminstall.txt")
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

check_imports
echo "$want_stamp" > "$STAMP"
