"""The sentiment n-gram head inside the multi-task model (nlp/ngram_head.py, nlp/modeling.py): the torch
forward computes exactly what the scipy reference does, it learns, it is blended at the configured share,
survives save/load, and refuses what it cannot be."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlp import ngram_head
from nlp.inference import pad_batch
from nlp.modeling import BertForMultiTaskClassification, configure_labels

LABELS = {"sentiment": ["negative", "neutral", "positive"], "relevance": ["not_relevant", "relevant"]}


def _model(**extra: object) -> BertForMultiTaskClassification:
    from transformers import BertConfig

    torch.manual_seed(0)
    cfg = configure_labels(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=32), LABELS)
    for k, v in extra.items():
        setattr(cfg, k, v)
    return BertForMultiTaskClassification(cfg).eval()


def _data(n: int, seed: int) -> tuple[list[list[int]], np.ndarray]:
    """Sequences of ids 5..59 with [CLS]=2 / [SEP]=3; the class shows as a bigram (10, 11+class)."""
    rng = np.random.default_rng(seed)
    seqs, y = [], []
    for i in range(n):
        c = i % 3
        body = rng.integers(5, 60, size=int(rng.integers(3, 20))).tolist()
        at = int(rng.integers(0, len(body)))
        seqs.append([2, *body[:at], 10, 11 + c, *body[at:], 3])
        y.append(c)
    return seqs, np.array(y)


def test_keys_hash_each_order_apart_and_torch_matches_numpy():
    keys = ngram_head.ngram_keys([7, 8, 9])
    assert len(keys) == 3 + 2 + 1 and len(set(keys.tolist())) == 6
    assert keys[0] == 7 and keys[3] == 7 * ngram_head.PRIME + 8 + ngram_head.ORDER_OFFSET[1]
    seqs = [[2, 5, 6, 3], [2, 9, 3], [2, 3]]
    ids, mask = pad_batch(seqs, 0)
    rows, tkeys = ngram_head.ngram_keys_torch(ids, mask)
    for i, s in enumerate(seqs):  # padding never forms an n-gram
        assert sorted(tkeys[rows == i].tolist()) == sorted(ngram_head.ngram_keys(s).tolist())


def test_idf_drops_rare_buckets_and_rows_are_unit_length():
    counts = ngram_head.count_matrix([[1, 2, 2], [1, 3]], buckets=1 << 12, orders=1)
    idf = ngram_head.fit_idf(counts, min_df=2)
    assert idf[1] > 0 and idf[2] == idf[3] == 0.0  # 2 and 3 each occur in one text only
    x = ngram_head.tfidf(counts, idf)
    assert np.allclose(np.sqrt(x.multiply(x).sum(1)).A1, 1.0)


def test_fitted_head_learns_and_torch_forward_equals_scipy_reference():
    seqs, y = _data(300, 0)
    fit = ngram_head.fit_ngram_head(seqs, y, 3, buckets=1 << 12, C=2.0, min_df=2, seed=0)
    assert fit.weight.shape == (1 << 12, 3) and fit.stats["rows"] == 300
    test_seqs, y_test = _data(90, 1)
    ref = ngram_head.decision_numpy(fit, test_seqs)
    assert (ref.argmax(1) == y_test).mean() > 0.9
    model = _model()
    model.attach_ngram_head("sentiment", fit.idf, fit.weight, fit.bias, share=0.5, orders=3)
    ids, mask = pad_batch(test_seqs, 0)
    with torch.no_grad():
        got = model.ngram_heads["sentiment"](ids, mask).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_sample_weights_pull_the_head_towards_the_weighted_rows():
    # two sources disagree about the same bigram: in "posts" (10, 11) means class 0, in "reviews" class 2
    seqs, y, post = [], [], []
    rng = np.random.default_rng(3)
    for i in range(240):
        body = rng.integers(20, 60, size=6).tolist()
        is_post = i % 2 == 0
        if i % 3 == 1:
            seqs.append([2, *body, 10, 12, 3])
            y.append(1)
        else:
            seqs.append([2, *body, 10, 11, 3])
            y.append(0 if is_post else 2)
        post.append(is_post)
    y_arr, post_arr = np.array(y), np.array(post)
    probe = [[2, 10, 11, 3]]
    plain = ngram_head.fit_ngram_head(seqs, y_arr, 3, buckets=1 << 10, C=2.0, min_df=1, seed=0)
    heavy = ngram_head.fit_ngram_head(seqs, y_arr, 3, buckets=1 << 10, C=2.0, min_df=1, seed=0,
                                      sample_weight=np.where(post_arr, 8.0, 1.0))
    assert not plain.stats["weighted"] and heavy.stats["weighted"]
    p_plain = ngram_head.decision_numpy(plain, probe)[0]
    p_heavy = ngram_head.decision_numpy(heavy, probe)[0]
    # weighting the posts makes their reading of the bigram (class 0) win over the reviews' (class 2)
    assert p_heavy[0] - p_heavy[2] > p_plain[0] - p_plain[2] and p_heavy.argmax() == 0
    with pytest.raises(ValueError, match="sample_weight"):
        ngram_head.fit_ngram_head(seqs, y_arr, 3, buckets=64, C=1.0, min_df=1, seed=0, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="sample_weight"):
        ngram_head.fit_ngram_head(seqs, y_arr, 3, buckets=64, C=1.0, min_df=1, seed=0,
                                  sample_weight=np.zeros(len(y_arr)))


def test_attached_head_blends_at_its_share_and_survives_save_and_load(tmp_path):
    seqs, y = _data(300, 0)
    fit = ngram_head.fit_ngram_head(seqs, y, 3, buckets=1 << 10, C=2.0, min_df=2, seed=0)
    model = _model()
    ids, mask = pad_batch(_data(12, 2)[0], 0)
    with torch.no_grad():
        enc = model(input_ids=ids, attention_mask=mask)["logits"]["sentiment"].softmax(-1)
        model.attach_ngram_head("sentiment", fit.idf, fit.weight, fit.bias, share=0.25, orders=3)
        out = model(input_ids=ids, attention_mask=mask)["logits"]
        ngram = model.ngram_heads["sentiment"](ids, mask).softmax(-1)
    torch.testing.assert_close(out["sentiment"].softmax(-1), 0.75 * enc + 0.25 * ngram, atol=1e-5, rtol=0)
    model.use_ngram_heads = False
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask)["logits"]["sentiment"].softmax(-1), enc)
    model.use_ngram_heads = True
    model.save_pretrained(str(tmp_path))
    again = BertForMultiTaskClassification.from_pretrained(str(tmp_path)).eval()
    assert again.config.ngram_heads == {"sentiment": {"buckets": 1 << 10, "orders": 3, "weight": 0.25}}
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids, attention_mask=mask)["logits"]["sentiment"],
                                   out["sentiment"])
        torch.testing.assert_close(again(input_ids=ids, attention_mask=mask)["logits"]["relevance"],
                                   out["relevance"])  # the other tasks untouched
    again.detach_ngram_head("sentiment")
    assert again.config.ngram_heads == {} and not len(again.ngram_heads)
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids, attention_mask=mask)["logits"]["sentiment"].softmax(-1), enc)


def test_what_cannot_be_a_head_is_refused():
    seqs, y = _data(30, 0)
    with pytest.raises(ValueError, match="every class"):
        ngram_head.fit_ngram_head(seqs, np.zeros(30, dtype=int), 3, buckets=64, C=1.0, min_df=1, seed=0)
    fit = ngram_head.fit_ngram_head(seqs, y, 3, buckets=64, C=1.0, min_df=1, seed=0)
    model = _model()
    with pytest.raises(ValueError, match="no task 'emotion'"):
        model.attach_ngram_head("emotion", fit.idf, fit.weight, fit.bias, share=0.5, orders=3)
    with pytest.raises(ValueError, match="share 0"):
        model.attach_ngram_head("sentiment", fit.idf, fit.weight, fit.bias, share=0.0, orders=3)
    with pytest.raises(ValueError, match="unknown task"):
        _model(ngram_heads={"stance": {"buckets": 64, "orders": 3, "weight": 0.5}})
