#!/usr/bin/env bash
# Reproduce the shipped weights on a CPU: data, then the runs of weights/recipes/, then weights/.
# Two runs at a time, one thread each (faster than one run on two threads for these small convolutions).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
mkdir -p data runs
[ -f data/synth/split1_train.txt ] || dtcm make-synthetic --out data/synth --per-class 60 --seed 1 --workers 2
[ -f data/synth-bright/split1_train.txt ] || dtcm make-synthetic --out data/synth-bright --per-class 60 --seed 2 --bright --workers 2
[ -f data/synth-heldout/split1_train.txt ] || dtcm make-synthetic --out data/synth-heldout --per-class 12 --seed 3 --workers 2
cat data/synth-heldout/split1_train.txt data/synth-heldout/split1_test.txt > data/synth-heldout/all.txt
[ -d data/real-dark/real ] || python scripts/make_real_dark.py --out data/real-dark --clips 48 --seed 0

run() {  # run RECIPE: train unless runs/NAME/final exists
  local name=$1 out
  out=$(python -c "import json,sys; print(json.load(open('weights/recipes/$name.json'))['output_dir'])")
  if [ -f "$out/final/model.safetensors" ]; then echo "have $out"; return; fi
  dtcm train --recipe "weights/recipes/$name.json" --no-progress > "runs/$name.log" 2>&1
  echo "done $name"
}
run pretrain_bright & (run lightdce_real; run zerodce_real) & wait
run wstc4 & run wstc0 & wait
run wstc2 & run wstc8 & wait
python scripts/publish_weights.py --runs runs --heldout data/synth-heldout/all.txt
