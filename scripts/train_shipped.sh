#!/usr/bin/env bash
# Reproduce the shipped weights on a CPU: data, then the runs of weights/recipes/, then weights/.
# Two runs at a time, one thread each (faster than one run on two threads for these small convolutions).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
mkdir -p data runs
[ -f data/synth/split1_train.txt ] || dtcm make-synthetic --version 1 --backgrounds ../shared/data/real --out data/synth --per-class 60 --seed 1 --workers 2
[ -f data/synth-bright/split1_train.txt ] || dtcm make-synthetic --version 1 --backgrounds ../shared/data/real --out data/synth-bright --per-class 60 --seed 2 --bright --workers 2
[ -f data/synth4/split1_train.txt ] || dtcm make-synthetic --version 1 --backgrounds ../shared/data/real --out data/synth4 --per-class 100 --seed 4 --workers 2
[ -f data/synth-union/split1_train.txt ] || python scripts/merge_splits.py data/synth-union data/synth data/synth4
[ -f data/synth-heldout/split1_train.txt ] || dtcm make-synthetic --version 1 --backgrounds ../shared/data/real --out data/synth-heldout --per-class 12 --seed 3 --workers 2
cat data/synth-heldout/split1_train.txt data/synth-heldout/split1_test.txt > data/synth-heldout/all.txt
[ -d data/real-dark/real ] || python scripts/make_real_dark.py --out data/real-dark --clips 48 --seed 0

run() {  # run RECIPE: train, resume an interrupted run, or skip a finished one
  local name=$1 out resume=()
  out=$(python -c "import json; print(json.load(open('weights/recipes/$name.json'))['output_dir'])")
  if [ -f "$out/final/model.safetensors" ]; then echo "have $out"; return 0; fi
  if compgen -G "$out/checkpoint-*" > /dev/null; then resume=(--resume latest); fi
  dtcm train --recipe "weights/recipes/$name.json" --no-progress "${resume[@]}" >> "runs/$name.log" 2>&1
  echo "done $name"
}
pair() {  # two runs side by side; fail if either fails
  run "$1" & local a=$!
  run "$2" & local b=$!
  wait $a; wait $b
}
phase=${1:-all}
if [ "$phase" = all ] || [ "$phase" = init ]; then
  (run pretrain_bright && run pretrain_bright2) & a=$!
  (run lightdce_real && run zerodce_real) & b=$!
  wait $a; wait $b
fi
if [ "$phase" = all ] || [ "$phase" = dark ]; then  # the backbone learns the dark clips behind lightdce-real
  pair dark_two_stage table6_no_enhancement
fi
if [ "$phase" = all ] || [ "$phase" = variants ]; then  # 60 joint steps per W_STC (about 8 min each here)
  pair wstc4 wstc0
  pair wstc2 wstc8
fi
if [ "$phase" = all ] || [ "$phase" = tables ]; then  # the other settings of Table VI, for docs/RESULTS.md
  pair table6_two_stage table6_one_stage_ar
fi
python scripts/publish_weights.py --runs runs --heldout data/synth-heldout/all.txt
# Honest confidence: temperature and "not sure" thresholds from held-out synthetic and real clips (docs/RESULTS.md)
[ -f data/synth-cal/all.txt ] || { dtcm make-synthetic --out data/synth-cal --per-class 8 --seed 11 --workers 2 &&
  cat data/synth-cal/split1_train.txt data/synth-cal/split1_test.txt > data/synth-cal/all.txt; }
[ -f data/real-val/split1_test.txt ] || python scripts/build_real_val.py --shared ../shared/data --out data/real-val
python scripts/calibrate_shipped.py --synthetic data/synth-cal/all.txt --real-val data/real-val
