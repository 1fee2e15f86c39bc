#!/usr/bin/env bash
# densevit end to end on the built-in demo shapes, on a CPU: set up (or reuse) the virtual environment, write the
# demo data, train the quickstart ViTDet Mask R-CNN, evaluate its last checkpoint and draw its predictions.
# Training starts from scratch each time (add --resume to TRAIN_ARGS to continue an interrupted run).
set -euo pipefail

# flags for tools/train.py (overridable from the environment), e.g. "--cfg-options train_cfg.max_iters=300"
TRAIN_ARGS="${TRAIN_ARGS:-}"
CONFIG=configs/quickstart/mask_rcnn_vit_tiny_demo.py
DATA_DIR=data/demo
WORK_DIR=work_dirs/demo
PERSON_IMAGES=../shared/data/coco_person_mini/images  # real photographs, drawn too when present

source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"

echo "== demo data -> $DATA_DIR"
python -m densevit.datasets.demo "$DATA_DIR"  # kept when an identical copy is already there

echo "== training $CONFIG -> $WORK_DIR"
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of flags
python tools/train.py "$CONFIG" --work-dir "$WORK_DIR" $TRAIN_ARGS
checkpoint="$(cat "$WORK_DIR/last_checkpoint")"

echo "== evaluating $checkpoint"
python tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK_DIR/test"

echo "== drawing predictions"
samples="$(mktemp -d)"
trap 'rm -rf "$samples"' EXIT
val_images=("$DATA_DIR"/val/*.jpg)
cp "${val_images[@]:0:8}" "$samples/"
pictures="$WORK_DIR/pictures/demo_val"
python tools/infer.py "$CONFIG" "$checkpoint" "$samples" --out-dir "$pictures"
if [[ -d "$PERSON_IMAGES" ]]; then
    python tools/infer.py "$CONFIG" "$checkpoint" "$PERSON_IMAGES" --out-dir "$WORK_DIR/pictures/coco_person_mini"
    pictures+=" and $WORK_DIR/pictures/coco_person_mini"
fi

logs=("$WORK_DIR"/2*/2*.log)  # one folder per run, named by its start time
headline="$(python -c 'import json, sys; m = json.load(open(sys.argv[1]))
print(", ".join(f"{k} {m[k]:.1f}" for k in ("bbox_AP", "segm_AP") if m.get(k) is not None))' "$WORK_DIR/test/metrics.json")"
cat <<DONE

densevit demo done:
  data         $DATA_DIR
  training log ${logs[-1]}
  checkpoint   $checkpoint
  metrics      $WORK_DIR/test/metrics.json ($headline)
  pictures     $pictures
               (one PNG per image with its detections drawn, all detections in predictions.json)
DONE
