#!/usr/bin/env bash
# The torch stages of the student recipe (masked-LM pretraining, fine-tuning) on an accelerator machine that
# has neither ../shared/data nor this project's CPU-side dependencies, from a bundle written here by
#   yuqing nlp cv nlp/configs/student.json .student-cv prepare --bundle .nlpdata/bundle
# (.nlpdata/ is git-ignored; copy it to the machine with the repository). There, in the repository root:
#   OUT=/some/dir nlp/gpu_train.sh [BUNDLE]
# writes one <fold>_<run>.tar per fine-tuning run and logs.tar into $OUT. Back here:
#   python -m nlp.student_bundle unpack RESULTS .student-cv
#   yuqing nlp cv nlp/configs/student.json .student-cv finish
# DEVICE=cpu runs the same on the CPU; LIMIT bounds the wall time (seconds, default 500).
set -uo pipefail
BUNDLE=${1:-.nlpdata/bundle}
OUT=${OUT:-/tmp/yuqing-gpu-out}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" || exit 1
timeout "${LIMIT:-500}" $PY -m nlp.student_bundle train "$BUNDLE" "$OUT" --device "${DEVICE:-cuda}" \
  --jobs "${JOBS:-6}" --work "${WORK:-/tmp/yuqing-gpu-work}"
rc=$?
[ "$rc" = 0 ] || echo "nlp.student_bundle train exited with $rc (124: LIMIT reached); finished runs are in $OUT" >&2
(cd "$OUT" && shopt -s nullglob && logs=(*.log report.json) && [ ${#logs[@]} -gt 0 ] && tar -cf logs.tar --remove-files "${logs[@]}") \
  || echo "no logs to pack in $OUT" >&2
ls -la "$OUT"
exit "$rc"
