#!/usr/bin/env bash
# The U-Net recipe directions, screened at a reduced scale (128×128 images, base 16) because this study ran on
# 2 CPU cores without native bf16 (a base-32 step at 256² costs ~2.5 s there). Cumulative steps, each a named
# variant, on ISBI 2012 and on the constructed thin_noisy set (make_sets.py), seeds 1 and 2:
#   r0_course     the shared recipe as it stands (epochs of the training set: 320 steps on ISBI, 160 on thin_noisy)
#   r1_steps      + a fixed epoch of 160 samples (40 steps; 1,600 steps over 40 epochs, whatever the set's size)
#   r2_intensity  + brightness/contrast ±0.25 and gamma 0.6–1.4 (p 0.3), nnU-Net's ranges
#   and the checkpoint choice: r2_intensity also keeps best_macro.ckpt, the epoch with the best val/f1_macro (both
#   classes' F1) beside best.ckpt (best foreground F1, the preset's monitor), so both choices come from one
#   trajectory (evaluate.sh tests it as r2_intensity_macro)
# Resumable: a sweep skips its complete jobs. Usage: SETS=<make_sets.py output> bash screen.sh [seeds]
# (DATASETS="thin" RECIPES="R2" pick a part, e.g. to run two parts side by side with JOBS=1)
set -euo pipefail
SETS=${SETS:?set SETS to the folder make_sets.py wrote}
SEEDS=${1:-1,2}
COMMON=(experiment=unet_baseline logger=none trainer.enable_progress_bar=false data.image_size=128
        model.net.features_start=16 "seed=$SEEDS" hydra/launcher=local_parallel hydra.launcher.n_jobs=${JOBS:-2}
        threads=1)
# Since commit 1c38256 the preset itself is r2 (fixed epochs + intensity), so r0 and r1 spell out the values the
# preset had when this study ran (c5c4a49): epochs of the training set (ISBI repeats it twice) and the paper's
# brightness/contrast ±0.1 without gamma. At c5c4a49 these extra overrides were the preset's own values.
STEPS=(data.train_repeats=1 data.samples_per_epoch=160)
INTENSITY=(data.brightness=0.25 data.contrast=0.25 data.gamma=0.4 data.p_gamma=0.3)
BEFORE=(data.brightness=0.1 data.contrast=0.1 data.gamma=0.0 data.p_gamma=0.0)
MACRO=(+callbacks.best_macro._target_=visionlab.run.checkpoints.RunModelCheckpoint
       "+callbacks.best_macro.dirpath=\${paths.output_dir}/checkpoints" +callbacks.best_macro.filename=best_macro
       +callbacks.best_macro.monitor=val/f1_macro +callbacks.best_macro.mode=max
       +callbacks.best_macro.auto_insert_metric_name=false)
R2=(experiment_name=r2_intensity "${STEPS[@]}" "${INTENSITY[@]}" "${MACRO[@]}")
for data in ${DATASETS:-isbi thin}; do
  if [ "$data" = isbi ]; then DATA=(data=isbi2012); repeats=2; else DATA=(data=seg_npz "data.data_dir=$SETS/thin_noisy.npz"); repeats=1; fi
  R0=(experiment_name=r0_course data.samples_per_epoch=null data.train_repeats=$repeats "${BEFORE[@]}")
  R1=(experiment_name=r1_steps "${STEPS[@]}" "${BEFORE[@]}")
  for recipe in ${RECIPES:-R0 R1 R2}; do
    declare -n overrides=$recipe
    python train.py -m "${COMMON[@]}" "${DATA[@]}" "${overrides[@]}" "sweep_name=unet_screen_$data"
  done
done
