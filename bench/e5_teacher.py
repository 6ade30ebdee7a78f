"""Diagnostic, not a shipped model: how far the e5 relevance teacher (``nlp/e5_teacher.py``; multilingual-e5-small
embeddings + keyword-rule features, logistic regression) gets on the human test split, against the keyword rules
of ``config/taxonomy.yaml`` on the same rows. It is fitted on the whole train split with the C of the student
config's grid chosen by cross-validation, its threshold the best on its out-of-fold train-split scores; no test
row is used for any choice. Needs the embeddings cache of a training run (``.student/e5_emb``).

    python bench/e5_teacher.py [WORK_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from sklearn.model_selection import StratifiedKFold

    from nlp.corpus import load_records
    from nlp.e5_teacher import features, fit_relevance, fit_teacher
    from nlp.human_labels import load_labels, split_of
    from nlp.student import StudentConfig
    from nlp.taxonomy import load_taxonomy, rule_relevant
    from nlp.train_ngram import best_threshold, prf
    from yuqing.settings import load_settings

    work = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".student"
    settings = load_settings()
    tax = load_taxonomy(ROOT / "config" / "taxonomy.yaml")
    recs = {r.uid: r for r in load_records(settings.paths.shared_data)}
    emb: dict[str, np.ndarray] = {}
    for part in sorted((work / "e5_emb").glob("part-*.npz")):
        z = np.load(part)
        emb.update(zip(z["uids"].tolist(), z["emb"], strict=True))
    if not emb:
        print(f"no e5 embeddings in {work / 'e5_emb'}: run `yuqing nlp train nlp/configs/student.json` first",
              file=sys.stderr)
        return 2
    rows = [r for r in load_labels(tax.names) if r.relevant is not None and r.uid in recs]
    train = [r for r in rows if split_of(r.uid) == "train"]
    test = [r for r in rows if split_of(r.uid) == "test"]
    y_tr = np.array([int(bool(r.relevant)) for r in train])
    y_te = np.array([int(bool(r.relevant)) for r in test])
    cfg = StudentConfig()
    teacher = fit_teacher(emb, [r.uid for r in train], [recs[r.uid].text for r in train], y_tr, tax, cfg.e5_C,
                          cfg.seed)
    X_tr = features(np.stack([emb[r.uid] for r in train]), [recs[r.uid].text for r in train], tax)
    oof = np.zeros(len(y_tr))
    for a, b in StratifiedKFold(5, shuffle=True, random_state=cfg.seed).split(X_tr, y_tr):
        oof[b] = fit_relevance(X_tr[a], y_tr[a], teacher.C, cfg.seed).predict_proba(X_tr[b])[:, 1]
    thr, f1_oof = best_threshold(y_tr, oof)
    p = teacher.predict([r.uid for r in test], [recs[r.uid].text for r in test])[:, 1]
    t = prf(y_te, p >= thr)
    rules = prf(y_te, np.array([rule_relevant(recs[r.uid].text, tax) for r in test]))
    print(f"train split {len(y_tr)} texts ({int(y_tr.sum())} relevant): C {teacher.C}, out-of-fold best F1 "
          f"{f1_oof:.4f} at threshold {thr:.4f}")
    print(f"test split {len(y_te)} texts ({int(y_te.sum())} relevant)")
    print(f"  e5 teacher     P {t['precision']:.4f} R {t['recall']:.4f} F1 {t['f1']:.4f}")
    print(f"  keyword rules  P {rules['precision']:.4f} R {rules['recall']:.4f} F1 {rules['f1']:.4f}")
    ok = t["f1"] >= 0.8
    print(f"RESULT e5_teacher relevance_f1={t['f1']:.4f} goal=>0.8(rules {rules['f1']:.4f}) "
          f"{'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
