#!/usr/bin/env bash
# Test-time options and the intensity-shifted test sets, evaluated from the screening runs' best checkpoints
# (train=false: no training; each evaluation is its own run record, named <variant>_<tag>, in $OUT/<sweep>/):
#   <variant>_tta          the run's own test split with model.tta=flips
#   <variant>_dark|bright  ISBI-trained runs only: isbi_shift_{dark,bright}.npz (make_sets.py), plain and _tta
#   <variant>_macro        runs that kept best_macro.ckpt: that checkpoint on the run's own test split
# Resumable: an evaluation whose record exists is skipped. Usage: SETS=<make_sets.py output> bash evaluate.sh
set -euo pipefail
SETS=${SETS:?set SETS to the folder make_sets.py wrote}
OUT=${OUT:-logs/unet_evals}
COMMON=(experiment=unet_baseline train=false logger=none trainer.enable_progress_bar=false data.image_size=128
        model.net.features_start=16 threads=${THREADS:-2})
evaluate() {  # run folder, tag, overrides... (CKPT: the checkpoint file name, best.ckpt by default)
  local run=$1 tag=$2; shift 2
  local variant seed
  variant=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['experiment'])" "$run/summary.json")
  seed=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['seed'])" "$run/summary.json")
  local folder="$OUT/$(basename "$(dirname "$run")")/${variant}_${tag}/eval_s${seed}"  # per sweep: names repeat
  if [ -f "$folder/summary.json" ]; then return; fi
  python train.py "${COMMON[@]}" "ckpt_path='$run/checkpoints/${CKPT:-best.ckpt}'" "seed=$seed" \
      "experiment_name=${variant}_${tag}" "paths.log_dir=$OUT" "hydra.run.dir=$folder" "$@"
}
for sweep in logs/sweeps/unet_screen_isbi logs/sweeps/unet_screen_thin; do
  for run in "$sweep"/experiment=*; do
    [ -f "$run/checkpoints/best.ckpt" ] && grep -q '"status": "completed"' "$run/summary.json" || continue
    own=(); [[ $sweep == *thin ]] && own=(data=seg_npz "data.data_dir=$SETS/thin_noisy.npz")
    if [ -f "$run/checkpoints/best_macro.ckpt" ]; then
      CKPT=best_macro.ckpt evaluate "$run" macro "${own[@]}"
      CKPT=best_macro.ckpt evaluate "$run" macro_tta "${own[@]}" model.tta=flips
    fi
    if [[ $sweep == *isbi ]]; then
      evaluate "$run" tta model.tta=flips
      for shift in dark bright; do
        evaluate "$run" "$shift" data=seg_npz "data.data_dir=$SETS/isbi_shift_$shift.npz" 'data.class_names=[membrane,"cell interior"]'
        evaluate "$run" "${shift}_tta" data=seg_npz "data.data_dir=$SETS/isbi_shift_$shift.npz" 'data.class_names=[membrane,"cell interior"]' model.tta=flips
      done
    else
      evaluate "$run" tta "${own[@]}" model.tta=flips
    fi
  done
done
