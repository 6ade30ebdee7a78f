"""Smoke test of the training entry point: a tiny model for a few steps on a small sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp.data import Example, label_example, read_smp, save_jsonl
from nlp.inference import load_classifier, predict_proba
from nlp.taxonomy import load_taxonomy
from nlp.train import TrainConfig, apply_overrides, train_model
from yuqing.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _sample(tmp_path: Path) -> Path:
    """A small data cache: the first SMP2020 training posts plus hand-written culture posts."""
    shared = load_settings().paths.shared_data
    src = shared / "sentiment" / "weibo_smp2020" / "virus_train.txt"
    assert src.exists(), f"shared data not found at {shared}; set YUQING_PATHS__SHARED_DATA"
    tax = load_taxonomy(ROOT / "config" / "taxonomy.yaml")
    rows = read_smp(src)[:240]
    exs = [label_example(t, tax, sentiment=s, source="smp_train") for t, s in rows]
    culture = ["市图书馆周末延长开放时间", "文化馆举办非遗展示活动", "网吧违规接纳未成年人被处罚", "博物馆免费开放预约"]
    exs += [label_example(t, tax, source="handmade") for t in culture * 10]
    cache = tmp_path / "cache"
    save_jsonl(exs, cache / "train.jsonl")
    save_jsonl([Example(t, sentiment=s, source="usual_eval") for t, s in rows[:32]], cache / "eval.jsonl")
    (cache / "meta.json").write_text(json.dumps({"topics": tax.names}, ensure_ascii=False), encoding="utf-8")
    return cache


def test_tiny_training_lowers_loss_and_round_trips(tmp_path):
    cache = _sample(tmp_path)
    cfg = TrainConfig(
        output_dir=str(tmp_path / "model"),
        data_cache=str(cache),
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        max_length=48,
        mlm_max_steps=3,
        mlm_batch_size=16,
        max_steps=40,
        batch_size=16,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        dev_fraction=0.1,
        log_every=1000,
        save_fp16=False,
        seed=7,
    )
    result = train_model(cfg)
    tr = result.metrics["train"]
    assert tr["steps"] == 40
    assert tr["loss_last"] < tr["loss_first"]
    assert result.metrics["mlm"]["steps"] == 3
    out = Path(cfg.output_dir)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert config["task_labels"]["topic"][0] == "公共文化服务保障政策"
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["eval"]["sentiment"]["usual_eval"]["n"] == 32

    texts = ["图书馆周末开放吗", "气死我了！！", "", "😀😀", "Hello 世界", "圖書館"]
    before = predict_proba(result.model, result.tokenizer, texts, batch_size=4, max_length=48)
    model, tok = load_classifier(out)
    after = predict_proba(model, tok, texts, batch_size=4, max_length=48)
    for task in before:
        np.testing.assert_array_equal(before[task], after[task])


def test_config_file_and_overrides(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"epochs": 2, "num_layers": 2}), encoding="utf-8")
    cfg = apply_overrides(TrainConfig.from_json(f), ["max_steps=5", "output_dir=/tmp/x", "use_reviews=false"])
    assert (cfg.epochs, cfg.num_layers, cfg.max_steps, cfg.output_dir, cfg.use_reviews) == (2, 2, 5, "/tmp/x", False)
    f.write_text(json.dumps({"epochz": 2}), encoding="utf-8")
    with pytest.raises(ValueError, match="epochz"):
        TrainConfig.from_json(f)
    with pytest.raises(ValueError, match="nope"):
        apply_overrides(TrainConfig(), ["nope=1"])
