"""Training entry point (run_classification.py style): dataclass config in, model directory + metrics out.

Two starts are supported:

* from scratch (``init_from`` unset): a BERT encoder of the configured size over a character vocabulary
  built from the training texts, optionally pretrained with masked-language modelling on all training
  texts (``mlm_epochs``), then fine-tuned on the three tasks;
* from a local Hugging Face BERT-architecture checkpoint directory (``init_from``, e.g. a downloaded
  bert-base-chinese): its tokenizer and encoder are reused and the task heads trained.

Usage: ``yuqing nlp train CONFIG.json`` or ``python -m nlp.train CONFIG.json`` (keys = TrainConfig fields).
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from nlp.data import IGNORE, RELEVANCE, SENTIMENTS, Example, load_jsonl, save_jsonl, split_dev
from nlp.inference import encode, pad_batch, predict_proba, set_offline
from yuqing.progress import progress

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    output_dir: str = "models/yuqing-zh-small"
    shared_data: str | None = None  # required unless data_cache holds the data; `yuqing nlp train`: paths.shared_data
    taxonomy: str = "config/taxonomy.yaml"
    data_cache: str | None = None  # folder with train.jsonl / eval.jsonl / meta.json; built when missing
    init_from: str | None = None  # local HF checkpoint dir (BERT architecture) to fine-tune
    # encoder size (from scratch only)
    hidden_size: int = 256
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    vocab_min_freq: int = 2
    vocab_max_size: int = 8000
    max_length: int = 128
    # masked-language-model pretraining (from scratch only)
    mlm_epochs: float = 0.0
    mlm_max_steps: int = -1
    mlm_batch_size: int = 128
    mlm_learning_rate: float = 5e-4
    mlm_probability: float = 0.15
    # fine-tuning
    epochs: float = 4.0
    max_steps: int = -1
    batch_size: int = 64
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    freeze_embeddings: bool = False
    # knowledge distillation from a fine-tuned teacher directory (a model this module trained)
    teacher_dir: str | None = None
    distill_alpha: float = 0.5  # weight of the soft (teacher) loss beside the hard-label loss
    distill_temperature: float = 2.0
    task_weights: dict[str, float] = field(default_factory=lambda: {"sentiment": 1.0, "relevance": 1.0, "topic": 0.5})
    dev_fraction: float = 0.1
    use_reviews: bool = True
    reviews_per_source: int = 4000
    sample_limit: int | None = None  # use only this many training examples (smoke tests)
    eval_limit: int | None = None  # evaluate on at most this many held-out posts per split
    eval_batch_size: int = 128
    seed: int = 42
    device: str = "auto"
    save_fp16: bool = True  # store weights as float16 (halves the shipped size; loaded as float32)
    log_every: int = 50

    @classmethod
    def from_json(cls, path: Path) -> TrainConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def metrics_for(y_true: list[int], y_pred: list[int], labels: list[int]) -> dict[str, float]:
    """Accuracy and macro-F1 over ``labels`` (pairs whose true label is IGNORE are skipped)."""
    from sklearn.metrics import accuracy_score, f1_score

    pairs = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if t != IGNORE]
    if not pairs:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "n": 0}
    t, p = zip(*pairs, strict=True)
    return {
        "accuracy": round(float(accuracy_score(t, p)), 4),
        "macro_f1": round(float(f1_score(t, p, labels=labels, average="macro", zero_division=0)), 4),
        "n": len(pairs),
    }


def prepare_data(cfg: TrainConfig) -> tuple[list[Example], list[Example], dict[str, list[Example]], list[str]]:
    """(train, dev, held-out sentiment eval splits, topic names), from the cache or the shared data."""
    cache = Path(cfg.data_cache) if cfg.data_cache else None
    if cache and (cache / "meta.json").exists():
        meta = json.loads((cache / "meta.json").read_text(encoding="utf-8"))
        examples = load_jsonl(cache / "train.jsonl")
        evals: dict[str, list[Example]] = {}
        for e in load_jsonl(cache / "eval.jsonl"):
            evals.setdefault(e.source, []).append(e)
        topics: list[str] = meta["topics"]
    else:
        from nlp.data import build_training_examples, load_sentiment_eval
        from nlp.taxonomy import load_taxonomy

        if cfg.shared_data is None:
            raise ValueError("TrainConfig.shared_data is not set: name the shared data folder "
                             "(`yuqing nlp train` takes it from paths.shared_data)")
        shared = Path(cfg.shared_data)
        tax = load_taxonomy(Path(cfg.taxonomy))
        topics = tax.names
        examples = build_training_examples(
            shared, tax, use_reviews=cfg.use_reviews, reviews_per_source=cfg.reviews_per_source, seed=cfg.seed
        )
        evals = {
            name: [Example(t, sentiment=s, source=name) for t, s in rows]
            for name, rows in load_sentiment_eval(shared).items()
        }
        if cache:
            save_jsonl(examples, cache / "train.jsonl")
            save_jsonl([e for rows in evals.values() for e in rows], cache / "eval.jsonl")
            (cache / "meta.json").write_text(json.dumps({"topics": topics}, ensure_ascii=False), encoding="utf-8")
    train, dev = split_dev(examples, cfg.dev_fraction, cfg.seed)
    if cfg.sample_limit is not None:
        train = train[: cfg.sample_limit]
        dev = dev[: max(1, cfg.sample_limit // 4)]
    if cfg.eval_limit is not None:
        evals = {k: v[: cfg.eval_limit] for k, v in evals.items()}
    return train, dev, evals, topics


def mask_tokens(
    ids: Any, mask: Any, vocab_size: int, mask_id: int, n_special: int, prob: float, gen: Any
) -> tuple[Any, Any]:
    """BERT masking: ``prob`` of the real tokens become targets; 80% [MASK], 10% random, 10% unchanged."""
    import torch

    labels = ids.clone()
    special = (ids < n_special) | (mask == 0)
    chosen = (torch.rand(ids.shape, generator=gen) < prob) & ~special
    labels[~chosen] = IGNORE
    inputs = ids.clone()
    r = torch.rand(ids.shape, generator=gen)
    inputs[chosen & (r < 0.8)] = mask_id
    rand_pos = chosen & (r >= 0.8) & (r < 0.9)
    inputs[rand_pos] = torch.randint(n_special, vocab_size, ids.shape, generator=gen)[rand_pos]
    return inputs, labels


def multitask_loss(
    logits: dict[str, Any],
    labels: dict[str, Any],
    weights: dict[str, float],
    soft: dict[str, Any] | None = None,
    alpha: float = 0.0,
    temperature: float = 1.0,
) -> Any:
    """Sum over tasks of weight * [(1 - alpha) * CE(hard labels, IGNORE skipped) + alpha * T² * KL(teacher ‖
    student at temperature T)]. Without ``soft`` it is the plain weighted cross-entropy; a task whose batch
    has no hard label contributes only its soft term. ``soft[task]`` rows that are all zero are skipped."""
    import torch
    from torch.nn import functional as F

    first = next(iter(logits.values()))
    loss = first.new_zeros(())
    for task, lg in logits.items():
        w = weights.get(task, 1.0)
        hard_w = 1.0 - alpha if soft is not None and task in soft else 1.0
        y = labels.get(task)
        if y is not None and bool((y != IGNORE).any()):
            loss = loss + w * hard_w * F.cross_entropy(lg, y, ignore_index=IGNORE)
        if soft is not None and task in soft and alpha > 0:
            p = soft[task]
            rows = p.sum(-1) > 0
            if bool(rows.any()):
                logq = F.log_softmax(lg[rows] / temperature, dim=-1)
                pt = F.softmax(torch.log(p[rows].clamp_min(1e-8)) / temperature, dim=-1)
                kl = F.kl_div(logq, pt, reduction="batchmean")
                loss = loss + w * alpha * temperature**2 * kl
    return loss


def teacher_soft_labels(cfg: TrainConfig, texts: list[str], relevance: list[int], device: str) -> dict[str, Any]:
    """Teacher probabilities per task for ``texts``; topic rows are zeroed where the text is neither labelled
    relevant nor judged relevant by the teacher (its topic guess is meaningless there)."""
    import torch

    from nlp.inference import load_classifier

    assert cfg.teacher_dir is not None
    teacher, ttok = load_classifier(Path(cfg.teacher_dir), device=device)
    probs = predict_proba(
        teacher, ttok, texts, batch_size=cfg.eval_batch_size, max_length=cfg.max_length, device=device
    )
    topic_ok = (probs["relevance"][:, 1] > 0.5) | (np.asarray(relevance) == 1)
    probs["topic"] = probs["topic"] * topic_ok[:, None]
    del teacher
    return {t: torch.from_numpy(p) for t, p in probs.items()}


def _schedule(optim: Any, total: int, warmup_ratio: float) -> Any:
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optim, int(total * warmup_ratio), max(total, 1))


def _steps(n: int, batch: int, epochs: float, max_steps: int) -> int:
    per_epoch = max(1, math.ceil(n / batch))
    return max_steps if max_steps > 0 else max(1, int(per_epoch * epochs))


def _batches(n: int, batch_size: int, total: int, rng: random.Random, desc: str) -> Iterator[list[int]]:
    """Example indexes, one batch per step, over epochs reshuffled by ``rng``, for ``total`` steps (shown as
    progress: a bar on a terminal, periodic log lines otherwise)."""
    step = 0
    with progress(desc, total=total, unit="steps") as bar:
        while step < total:
            order = list(range(n))
            rng.shuffle(order)
            for i in range(0, len(order), batch_size):
                if step >= total:
                    return
                yield order[i : i + batch_size]
                step += 1
                bar.update()


def _optimise(loss: Any, params: Any, optim: Any, sched: Any) -> float:
    """One optimiser step on ``loss`` (gradients clipped at 1.0); returns the loss."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optim.step()
    sched.step()
    optim.zero_grad()
    return float(loss.item())


def pretrain_mlm(
    cfg: TrainConfig, bert_config: Any, seqs: list[list[int]], pad_id: int, mask_id: int, device: str, work_dir: Path
) -> dict[str, Any]:
    """Masked-language-model pretraining of a fresh encoder; saves it to ``work_dir``; returns stats."""
    import torch
    from transformers import BertForMaskedLM

    model: Any = BertForMaskedLM(bert_config)
    model = model.to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.mlm_learning_rate, weight_decay=cfg.weight_decay)
    total = _steps(len(seqs), cfg.mlm_batch_size, cfg.mlm_epochs, cfg.mlm_max_steps)
    sched = _schedule(optim, total, cfg.warmup_ratio)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    losses: list[float] = []
    step = 0
    t0 = time.time()
    model.train()
    for idx in _batches(len(seqs), cfg.mlm_batch_size, total, rng, "mlm pretraining"):
        ids, mask = pad_batch([seqs[j] for j in idx], pad_id)
        inputs, labels = mask_tokens(ids, mask, bert_config.vocab_size, mask_id, 5, cfg.mlm_probability, gen)
        out = model(input_ids=inputs.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        losses.append(_optimise(out.loss, model.parameters(), optim, sched))
        step += 1
        if step % cfg.log_every == 0:
            log.info("mlm step %d/%d loss %.4f", step, total, np.mean(losses[-cfg.log_every :]))
    model.save_pretrained(str(work_dir))
    return {
        "steps": step,
        "loss_first": round(float(np.mean(losses[:10])), 4),
        "loss_last": round(float(np.mean(losses[-10:])), 4),
        "seconds": round(time.time() - t0, 1),
    }


def evaluate(
    model: Any, tokenizer: Any, cfg: TrainConfig, dev: list[Example], evals: dict[str, list[Example]], device: str
) -> dict[str, Any]:
    """Metrics per task on dev (weak labels for relevance/topic) and on the held-out SMP2020 splits."""
    topics = model.config.task_labels["topic"]
    res: dict[str, Any] = {"sentiment": {}, "relevance": {}, "topic": {}}

    def proba(examples: list[Example], split: str) -> dict[str, Any]:
        return predict_proba(model, tokenizer, [e.text for e in examples], batch_size=cfg.eval_batch_size,
                             max_length=cfg.max_length, device=device, progress_desc=f"evaluating on {split}")

    probs = proba(dev, "dev")
    for task, labels, attr in (
        ("sentiment", SENTIMENTS, "sentiment"),
        ("relevance", RELEVANCE, "relevance"),
        ("topic", topics, "topic"),
    ):
        pred = probs[task].argmax(1).tolist()
        res[task]["dev"] = metrics_for([getattr(e, attr) for e in dev], pred, list(range(len(labels))))
    all_t: list[int] = []
    all_p: list[int] = []
    for name, rows in evals.items():
        p = proba(rows, name)["sentiment"].argmax(1).tolist()
        t = [e.sentiment for e in rows]
        res["sentiment"][name] = metrics_for(t, p, [0, 1, 2])
        all_t += t
        all_p += p
    if evals:
        res["sentiment"]["smp2020_eval"] = metrics_for(all_t, all_p, [0, 1, 2])
    return res


@dataclass
class TrainResult:
    model: Any  # the saved model, as saved (float16 when cfg.save_fp16), on the CPU
    tokenizer: Any
    metrics: dict[str, Any]


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train and save (see :func:`train_model`); returns the metrics written to metrics.json."""
    return train_model(cfg).metrics


def train_model(cfg: TrainConfig) -> TrainResult:
    """Train, evaluate, save the best epoch (by dev sentiment macro-F1) to ``cfg.output_dir``."""
    set_offline()
    import torch
    from transformers import AutoTokenizer, BertConfig

    from nlp.modeling import BertForMultiTaskClassification, configure_labels
    from nlp.vocab import SPECIAL_TOKENS, build_char_vocab, make_tokenizer

    seed_everything(cfg.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_ex, dev, evals, topics = prepare_data(cfg)
    task_labels = {"sentiment": list(SENTIMENTS), "relevance": list(RELEVANCE), "topic": topics}
    log.info("train %d dev %d eval %s device %s", len(train_ex), len(dev), [len(v) for v in evals.values()], device)
    metrics: dict[str, Any] = {"config": asdict(cfg), "data": {"train": len(train_ex), "dev": len(dev)}}
    tokenizer: Any
    if cfg.init_from:
        tokenizer = AutoTokenizer.from_pretrained(cfg.init_from, local_files_only=True)
        config = BertConfig.from_pretrained(cfg.init_from, local_files_only=True)
        configure_labels(config, task_labels)
        model = BertForMultiTaskClassification.from_pretrained(cfg.init_from, config=config, local_files_only=True)
    else:
        vocab = build_char_vocab((e.text for e in train_ex), cfg.vocab_min_freq, cfg.vocab_max_size)
        tokenizer = make_tokenizer(vocab)
        config = BertConfig(
            vocab_size=len(vocab),
            hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size,
            max_position_embeddings=cfg.max_position_embeddings,
            pad_token_id=vocab.index("[PAD]"),
        )
        configure_labels(config, task_labels)
        mlm_dir = out_dir / "_mlm"
        if cfg.mlm_epochs > 0 or cfg.mlm_max_steps > 0:
            seqs = [s for s in encode(tokenizer, [e.text for e in train_ex], cfg.max_length) if len(s) > 3]
            metrics["mlm"] = pretrain_mlm(
                cfg, config, seqs, vocab.index("[PAD]"), vocab.index(SPECIAL_TOKENS[4]), device, mlm_dir
            )
            log.info("mlm done %s", metrics["mlm"])
            model = BertForMultiTaskClassification.from_pretrained(str(mlm_dir), config=config)
            import shutil

            shutil.rmtree(mlm_dir, ignore_errors=True)
        else:
            model = BertForMultiTaskClassification(config)
    model = model.to(device)  # type: ignore[arg-type]
    if cfg.freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    seqs = encode(tokenizer, [e.text for e in train_ex], cfg.max_length)
    ys = {t: torch.tensor([getattr(e, t) for e in train_ex], dtype=torch.long) for t in task_labels}
    soft: dict[str, Any] | None = None
    if cfg.teacher_dir:
        soft = teacher_soft_labels(cfg, [e.text for e in train_ex], [e.relevance for e in train_ex], device)
        metrics["teacher"] = cfg.teacher_dir
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    total = _steps(len(seqs), cfg.batch_size, cfg.epochs, cfg.max_steps)
    sched = _schedule(optim, total, cfg.warmup_ratio)
    per_epoch = max(1, math.ceil(len(seqs) / cfg.batch_size))
    rng = random.Random(cfg.seed)
    pad_id = tokenizer.pad_token_id or 0
    losses: list[float] = []
    history: list[dict[str, Any]] = []
    best_score = -1.0
    best_state: dict[str, Any] | None = None
    step = 0
    t0 = time.time()
    model.train()
    for idx in _batches(len(seqs), cfg.batch_size, total, rng, "training"):
        ids, mask = pad_batch([seqs[j] for j in idx], pad_id)
        labels = {t: y[idx].to(device) for t, y in ys.items()}
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device))
        batch_soft = {t: p[idx].to(device) for t, p in soft.items()} if soft is not None else None
        loss = multitask_loss(
            out["logits"], labels, cfg.task_weights, batch_soft, cfg.distill_alpha, cfg.distill_temperature
        )
        losses.append(_optimise(loss, params, optim, sched))
        step += 1
        if step % cfg.log_every == 0:
            log.info("step %d/%d loss %.4f", step, total, np.mean(losses[-cfg.log_every :]))
        if step % per_epoch == 0 or step == total:
            ev = evaluate(model, tokenizer, cfg, dev, {}, device)
            score = ev["sentiment"]["dev"]["macro_f1"]
            score = -0.0 if math.isnan(score) else score
            history.append({"step": step, "dev": {k: v["dev"] for k, v in ev.items()}})
            log.info("eval step %d: %s", step, history[-1]["dev"])
            if score > best_score:
                best_score = score
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    metrics["train"] = {
        "steps": step,
        "loss_first": round(float(np.mean(losses[:10])), 4),
        "loss_last": round(float(np.mean(losses[-10:])), 4),
        "seconds": round(time.time() - t0, 1),
        "history": history,
    }
    metrics["eval"] = evaluate(model, tokenizer, cfg, dev, evals, device)
    log.info("final eval %s", json.dumps(metrics["eval"], ensure_ascii=False))
    model = model.cpu()
    if cfg.save_fp16:
        model = model.half()
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    (out_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    return TrainResult(model.eval(), tokenizer, metrics)


def apply_overrides(cfg: TrainConfig, pairs: list[str]) -> TrainConfig:
    """``key=value`` overrides (value parsed as JSON, else taken as a string), for quick experiments."""
    known = {f.name for f in fields(cfg)}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known:
            raise ValueError(f"bad override {pair!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        setattr(cfg, key, value)
    return cfg


def main(argv: list[str] | None = None) -> int:
    """``python -m nlp.train CONFIG.json [KEY=VALUE ...]``: the same as ``yuqing nlp train`` (which builds the
    settings that fill ``shared_data`` and ``taxonomy``)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m nlp.train CONFIG.json [KEY=VALUE ...]", file=sys.stderr)
        return 2
    from nlp.cli import main as nlp_main

    return nlp_main(["train", *args])


if __name__ == "__main__":
    raise SystemExit(main())
