#!/usr/bin/env bash
# Test-time options and the intensity-shifted test sets, evaluated from the screening runs' best checkpoints
# (train=false: no training; each evaluation is its own run record, named <variant>_<tag>, in $OUT/<sweep>/):
#   <variant>_tta          the run's own test split with model.tta=flips
#   <variant>_dark|bright  ISBI-trained runs only: isbi_shift_{dark,bright}.npz (make_sets.py), plain and _tta
#   <variant>_macro        runs that kept best_macro.ckpt: that checkpoint on the run's own test split
# Resumable: an evaluation whose record exists is skipped. Usage: SETS=<make_sets.py output> bash evaluate.sh
# Parts (defaults: everything above, as the first screen ran): SWEEPS="isbi" (which sweeps), SHIFTS="dark bright
# dark_far bright_far noise blur" (which isbi_shift_<name>.npz; default "dark bright"), TTA=0 (skip the flip
# evaluations), MACRO=0 (skip best_macro.ckpt).
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
  # Since 7b91622, ckpt_path=<run>/checkpoints/… takes the run's config and its experiment name and refuses
  # another experiment_name, so each evaluation reads the checkpoint through a link outside the run folder: the
  # overrides above define the same model (the preset at 128², base 16), experiment_name names the evaluation, and
  # the link keeps the sweep and run folder names by which the report finds the run that trained it.
  local link="${LINKS:-logs/eval_checkpoints}/$(basename "$(dirname "$run")")/$(basename "$run")/checkpoints/${CKPT:-best.ckpt}"
  mkdir -p "$(dirname "$link")" && ln -sfn "$(realpath "$run/checkpoints/${CKPT:-best.ckpt}")" "$link"
  python train.py "${COMMON[@]}" "ckpt_path='$link'" "seed=$seed" \
      "experiment_name=${variant}_${tag}" "paths.log_dir=$OUT" "hydra.run.dir=$folder" "$@"
}
for sweep in ${SWEEPS:-isbi thin}; do
  sweep=logs/sweeps/unet_screen_$sweep
  for run in "$sweep"/*; do  # run folders: experiment=… (older) or seed=…,experiment=… (newer)
    [ -f "$run/checkpoints/best.ckpt" ] && grep -q '"status": "completed"' "$run/summary.json" || continue
    own=(); [[ $sweep == *thin ]] && own=(data=seg_npz "data.data_dir=$SETS/thin_noisy.npz")
    if [ -f "$run/checkpoints/best_macro.ckpt" ] && [ "${MACRO:-1}" = 1 ]; then
      CKPT=best_macro.ckpt evaluate "$run" macro "${own[@]}"
      if [ "${TTA:-1}" = 1 ]; then CKPT=best_macro.ckpt evaluate "$run" macro_tta "${own[@]}" model.tta=flips; fi
    fi
    if [[ $sweep == *isbi ]]; then
      if [ "${TTA:-1}" = 1 ]; then evaluate "$run" tta model.tta=flips; fi
      for shift in ${SHIFTS:-dark bright}; do
        evaluate "$run" "$shift" data=seg_npz "data.data_dir=$SETS/isbi_shift_$shift.npz" 'data.class_names=[membrane,"cell interior"]'
        if [ "${TTA:-1}" = 1 ]; then evaluate "$run" "${shift}_tta" data=seg_npz "data.data_dir=$SETS/isbi_shift_$shift.npz" 'data.class_names=[membrane,"cell interior"]' model.tta=flips; fi
      done
    else
      if [ "${TTA:-1}" = 1 ]; then evaluate "$run" tta "${own[@]}" model.tta=flips; fi
    fi
  done
done
