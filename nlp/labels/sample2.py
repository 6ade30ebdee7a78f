# ruff: noqa  (kept byte-for-byte as the annotators' sampler was run, apart from the paths)
# mypy: ignore-errors
"""Round 2 of the relevance-labelling sample (issue 12): texts with STRONG culture keywords (the first, broad
round found only ~2% relevant), holdout excluded, first-round uids excluded. Deterministic (seed 11)."""
import json, random
from pathlib import Path
# Usage: python nlp/labels/sample2.py [SHARED_DATA_DIR [OUT_DIR]] (needs chunk0..2.jsonl of round 1 in OUT_DIR).
import sys
from pathlib import Path
exec(open(Path(__file__).resolve().parent / "sample.py", encoding="utf-8").read().split("def draw")[0])  # pools: gov, weibo, news; hit()
seen = set()
for j in range(3):
    for line in open(OUT / f"chunk{j}.jsonl", encoding="utf-8"):
        seen.add(json.loads(line)["uid"])
STRONG = ["文化局", "文旅局", "文广旅", "文化和旅游局", "文化广电", "广电", "公共文化", "文化服务", "文化惠民", "文化馆",
          "图书馆", "博物馆", "美术馆", "纪念馆", "非遗", "非物质文化遗产", "文物", "文化遗产", "古建筑", "考古", "故居",
          "剧院", "演出", "文艺汇演", "戏曲", "书屋", "文化站", "文化中心", "版权", "著作权", "盗版", "网吧", "娱乐场所",
          "歌厅", "KTV", "ktv", "文化市场", "广场舞", "读书", "阅读", "展览", "文化节", "艺术节", "送戏", "电影放映",
          "有线电视", "户户通", "文化产业", "文创", "少年宫", "历史建筑", "传承人", "书法", "剧团", "文化活动"]
def strong(t): return any(k in t for k in STRONG)
rng = random.Random(11)
def take(keys, n):
    keys = sorted(keys); rng.shuffle(keys); return keys[:n]
sample = []
g = [k for k in gov if f"gov:{k}" not in seen and strong(gov[k][1])]
w = [k for k in weibo if k not in seen and strong(weibo[k])]
nc = [k for k in news if k not in seen and news[k][0] == "news_culture"]
ns = [k for k in news if k not in seen and news[k][0] != "news_culture" and strong(news[k][1])]
print("pools", len(g), len(w), len(nc), len(ns))
for k in take(g, 420): sample.append({"uid": f"gov:{k}", "text": gov[k][1][:700], "kw_hit": True})
for k in take(w, 220): sample.append({"uid": k, "text": weibo[k][:700], "kw_hit": True})
for k in take(nc, 260): sample.append({"uid": k, "text": news[k][1], "kw_hit": hit(news[k][1])})
for k in take(ns, 160): sample.append({"uid": k, "text": news[k][1], "kw_hit": True})
rng.shuffle(sample)
print(len(sample))
for j in range(3, 5):
    with open(OUT / f"chunk{j}.jsonl", "w", encoding="utf-8") as fh:
        for s in sample[j - 3::2]:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
