# ruff: noqa  (a one-off sampler, kept as it was run)
# mypy: ignore-errors
"""Round 3 of the relevance-labelling sample (issue 12). Rounds 1-2 labelled every text with a strong culture
keyword and found only 96 relevant, so round 3 ranks the texts nobody has labelled yet by a char TF-IDF +
logistic-regression scorer fitted on the *train split* of the round 1-2 labels (the test split is not looked
at) and takes the highest-scoring ones, plus every remaining TNEWS news_culture headline and a random draw of
board messages with any culture keyword (hard negatives). Holdout excluded. Deterministic (seed 13).

Usage: python nlp/labels/sample3.py [SHARED_DATA_DIR [OUT_DIR]] -> chunk5..10.jsonl (uid, text, kw_hit)."""
import csv, json, random, sys
from pathlib import Path

__file__ = str(Path(__file__).resolve().parent / "sample.py")  # sample.py's paths are relative to itself
exec(open(__file__, encoding="utf-8").read().split("def draw")[0])  # pools: gov, weibo, news; hit(); SH; OUT
sys.path.insert(0, str(HERE.parents[1]))
from nlp.human_labels import split_of
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROUND = int(sys.argv[3]) if len(sys.argv) > 3 else 3
labelled = {r["uid"]: r["relevance"] for r in csv.DictReader(open(HERE / "relevance.csv", encoding="utf-8"))
            if int(r["round"]) < ROUND}
texts = {f"gov:{k}": v[1][:700] for k, v in gov.items()}
texts.update({k: v for k, v in weibo.items()})
texts.update({k: v[1] for k, v in news.items()})
train = [u for u, rel in sorted(labelled.items()) if rel != "uncertain" and split_of(u) == "train" and u in texts]
vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
X = vec.fit_transform([texts[u] for u in train])
clf = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000).fit(X, [labelled[u] == "relevant" for u in train])
pool = sorted(u for u in texts if u not in labelled and (u.startswith("gov:") or u.startswith(("tnews", "thucnews"))))
score = dict(zip(pool, clf.predict_proba(vec.transform([texts[u] for u in pool]))[:, 1]))
rng = random.Random(10 + ROUND)
top = sorted(pool, key=lambda u: (-score[u], u))[:1450]
chosen = set(top)
culture = [u for u in pool if u.startswith("tnews") and news[u][0] == "news_culture" and u not in chosen]
chosen.update(culture)
rest = [u for u in pool if u.startswith("gov:") and u not in chosen and hit(texts[u])]
rng.shuffle(rest)
chosen.update(rest[: 1800 - len(chosen)])
sample = [{"uid": u, "text": texts[u], "kw_hit": hit(texts[u])} for u in sorted(chosen)]
rng.shuffle(sample)
print(len(sample), "top", len(top), "news_culture", len(culture), "kw hits", sum(s["kw_hit"] for s in sample))
for j in range(6):
    with open(OUT / f"chunk{5 + 6 * (ROUND - 3) + j}.jsonl", "w", encoding="utf-8") as fh:
        for s in sample[j::6]:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
