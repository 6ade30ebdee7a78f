# ruff: noqa  (kept byte-for-byte as the annotators' sampler was run, apart from the paths)
# mypy: ignore-errors
"""Draw the relevance-labelling sample (issue 12) from ../shared/data, holdout excluded. Deterministic (seed 7)."""
# Usage: python nlp/labels/sample.py [SHARED_DATA_DIR [OUT_DIR]] (defaults: ../shared/data beside the repo, and
# this folder). Writes chunk0..2.jsonl (uid, text, kw_hit) for the annotators; the texts are NOT committed.
import csv, json, random, re, sys, unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SH = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data"
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE
import pandas as pd
import yaml

WS = re.compile(r"\s+")
def clean(t):
    if not isinstance(t, str): t = "" if t is None else str(t)
    if t == "nan": return ""
    return WS.sub(" ", unicodedata.normalize("NFC", t)).strip()

tax = yaml.safe_load(open(HERE.parents[1] / "config" / "taxonomy.yaml", encoding="utf-8"))
kws = set(tax["relevance"]["keywords"])
for c in tax["categories"]:
    kws.update(c["keywords"])
kws.update(["文化", "文艺", "艺术", "歌舞", "广场舞", "电影", "书店", "展", "读书", "阅读", "剧", "音乐", "歌厅", "景区", "古镇", "书法", "舞蹈", "图书"])
kws = sorted(kws, key=len, reverse=True)
def hit(t): return any(k.lower() in t.lower() for k in kws)

holdout = {str(r["留言编号"]).strip() for r in csv.DictReader(open(SH/"gov_messages/holdout_ids.csv", encoding="utf-8-sig"))}
rng = random.Random(7)
items = {}  # uid -> (source, text)
gov = {}
for f in ("messages_labelled_495.xlsx", "messages_with_likes_4326.xlsx", "messages_with_replies_2816.xlsx"):
    df = pd.read_excel(SH/"gov_messages"/f)
    for _, r in df.iterrows():
        mid = str(r["留言编号"]).strip()
        if mid in holdout or mid in gov: continue
        text = clean(f"{clean(r.get('留言主题'))}。{clean(r.get('留言详情'))}")
        if text: gov[mid] = (f.split("_")[1], text)
weibo = {}
for f in ("virus_train.txt", "usual_eval_labeled.txt"):
    for r in json.load(open(SH/"sentiment/weibo_smp2020"/f, encoding="utf-8")):
        t = clean(r["content"])
        if len(t) >= 8: weibo[f"smp_{f.split('_')[0]}_{f.split('_')[1].split('.')[0]}:{r['id']}"] = t
news = {}
for i, line in enumerate(open(SH/"topics/tnews/dev.json", encoding="utf-8")):
    if line.strip():
        r = json.loads(line); news[f"tnews_dev:{i}"] = (r["label_desc"], clean(r["sentence"]))
for i, line in enumerate(open(SH/"topics/thucnews_titles/dev.txt", encoding="utf-8")):
    t = line.rsplit("\t", 1)[0]
    if t.strip(): news[f"thucnews_dev:{i}"] = ("thucnews", clean(t))

def draw(pool, n_hit, n_other):
    keys = sorted(pool)
    rng.shuffle(keys)
    txt = lambda k: pool[k] if isinstance(pool[k], str) else pool[k][1]
    h = [k for k in keys if hit(txt(k))][:n_hit]
    o = [k for k in keys if not hit(txt(k))][:n_other]
    return h + o

sample = []
for mid in draw(gov, 560, 340):
    sample.append({"uid": f"gov:{mid}", "text": gov[mid][1][:700], "kw_hit": hit(gov[mid][1])})
for k in draw(weibo, 200, 250):
    sample.append({"uid": k, "text": weibo[k][:700], "kw_hit": hit(weibo[k])})
# news: favour culture-adjacent TNEWS classes among keyword hits
for k in draw(news, 250, 200):
    sample.append({"uid": k, "text": news[k][1], "kw_hit": hit(news[k][1]), "hint": news[k][0]})
rng.shuffle(sample)
print(len(sample), sum(s["kw_hit"] for s in sample))
out = OUT
n = 3
for j in range(n):
    with open(out/f"chunk{j}.jsonl", "w", encoding="utf-8") as fh:
        for s in sample[j::n]:
            s = {k: v for k, v in s.items() if k != "hint"}
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
