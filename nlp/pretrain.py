"""Character vocabulary + masked-language-model pretraining of a small BERT encoder on the CPU, resumable.

The corpus is given by the caller (:mod:`nlp.student` passes every non-held-out text of the shared data minus
the texts its evaluations hold out); ``python -m nlp.pretrain`` uses every non-held-out text
(:func:`nlp.corpus.load_records`): the held-out board messages are never read. The loss is computed at the
masked positions only (the vocabulary projection of the other 85% of the tokens is skipped: a third less
compute on the CPU), batches are length-bucketed with dynamic padding. Checkpoints (model, optimiser,
scheduler, step, RNG state) are written to ``OUT/ckpt.pt`` every ``--save-every`` steps and at the end, so an
interrupted run resumes where it stopped (run the same command again). ``--max-minutes`` bounds the wall time
of one invocation (it saves and exits). The learning rate decays linearly over ``--steps``; the encoder is
saved with ``save_pretrained`` to ``OUT/encoder`` (with the tokenizer) whenever a checkpoint is written.

    python -m nlp.pretrain OUT [--steps N] [--max-minutes M] [--shared DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

@dataclass
class PretrainConfig:
    hidden_size: int = 256
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    vocab_min_freq: int = 2
    vocab_max_size: int = 8000
    max_length: int = 128
    batch_size: int = 64
    learning_rate: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    mlm_probability: float = 0.15
    steps: int = 3000
    seed: int = 42


def length_bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length sequences (sorted within windows of 50 batches), less padding."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for i in range(0, len(order), window):
        chunk = sorted(order[i : i + window], key=lambda j: lengths[j])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def build_or_load_tokenizer(out: Path, texts: list[str], cfg: PretrainConfig) -> Any:
    from transformers import AutoTokenizer

    from nlp.vocab import build_char_vocab, make_tokenizer

    tok_dir = out / "encoder"
    if (tok_dir / "vocab.txt").exists():
        return AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    vocab = build_char_vocab(texts, cfg.vocab_min_freq, cfg.vocab_max_size)
    tok: Any = make_tokenizer(vocab)
    tok.save_pretrained(str(tok_dir))
    return tok


def prepare_sequences(out: Path, records: list[Any], cfg: PretrainConfig) -> tuple[Any, list[list[int]]]:
    """The tokenizer (``out/encoder``, built from ``records``' characters) and the token ids of every record
    longer than 4 tokens (``out/sequences.json``), written once; later calls read them (``records`` unused)."""
    from nlp.corpus import write_corpus
    from nlp.inference import encode

    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "pretrain_config.json"
    if cfg_path.exists():
        saved = json.loads(cfg_path.read_text(encoding="utf-8"))
        if saved != asdict(cfg):
            raise ValueError(f"{cfg_path} differs from this run's options: resume with the same options")
    cfg_path.write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    seq_cache = out / "sequences.json"
    tok: Any
    if seq_cache.exists():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(out / "encoder"), local_files_only=True)
        seqs: list[list[int]] = json.loads(seq_cache.read_text(encoding="utf-8"))
        return tok, seqs
    if not records:
        raise ValueError(f"{seq_cache} is missing and no pretraining texts were given")
    n = write_corpus(records, out / "corpus.jsonl")
    texts = [r.text for r in records]
    tok = build_or_load_tokenizer(out, texts, cfg)
    seqs = [s for s in encode(tok, texts, cfg.max_length) if len(s) > 4]
    seq_cache.write_text(json.dumps(seqs), encoding="utf-8")
    log.info("corpus %d texts, %d sequences, vocabulary %d", n, len(seqs), tok.vocab_size)
    return tok, seqs


def pretrain(
    out: Path,
    records: list[Any],
    cfg: PretrainConfig,
    max_minutes: float,
    save_every: int,
    stop_at: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """MLM-pretrain on ``records`` (:class:`nlp.corpus.Record`); resumes from ``out/ckpt.pt`` when present.
    ``stop_at`` (< ``cfg.steps``): stop there; the learning-rate schedule stays ``cfg.steps`` long, so a run
    cut short can still be resumed to the end of its schedule. ``records`` may be empty when
    :func:`prepare_sequences` has already written the tokenizer and the sequences (an accelerator machine
    needs only those). ``device``: where the model trains (``cpu``, ``cuda``)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    from nlp.inference import pad_batch, set_offline
    from nlp.train import mask_tokens

    set_offline()
    hf_logging.disable_progress_bar()
    t_start = time.time()
    tok, seqs = prepare_sequences(out, records, cfg)
    vocab_size = len(tok)
    bert_config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    model: Any = BertForMaskedLM(bert_config)
    model.to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(optim, cfg.warmup_steps, cfg.steps)
    step, epoch, pos, losses = 0, 0, 0, []
    ckpt = out / "ckpt.pt"
    gen = torch.Generator().manual_seed(cfg.seed)
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step, epoch, pos, losses = state["step"], state["epoch"], state["pos"], state["losses"]
        gen.set_state(state["gen"].cpu())
        log.info("resumed at step %d (epoch %d)", step, epoch)

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optim": optim.state_dict(),
                "sched": sched.state_dict(),
                "step": step,
                "epoch": epoch,
                "pos": pos,
                "losses": losses,
                "gen": gen.get_state(),
            },
            tmp,
        )
        tmp.replace(ckpt)
        model.save_pretrained(str(out / "encoder"))
        (out / "progress.json").write_text(
            json.dumps({"step": step, "of": cfg.steps, "epoch": epoch, "loss_recent": _recent(losses)}),
            encoding="utf-8",
        )

    last = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    lengths = [len(s) for s in seqs]
    model.train()
    deadline = t_start + max_minutes * 60
    t0 = time.time()
    done_in_run = 0
    while step < last and time.time() < deadline:
        # each epoch's batch order depends only on (seed, epoch): a resumed run skips the batches already done
        batches = length_bucketed_batches(lengths, cfg.batch_size, random.Random(cfg.seed * 1000 + epoch))
        for b in batches[pos:]:
            if step >= last or time.time() >= deadline:
                break
            ids, mask = pad_batch([seqs[j] for j in b], tok.pad_token_id)
            inputs, labels = mask_tokens(ids, mask, vocab_size, tok.mask_token_id, 5, cfg.mlm_probability, gen)
            loss = masked_lm_loss(model, inputs.to(device), mask.to(device), labels.to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            losses.append(round(float(loss.item()), 4))
            step += 1
            pos += 1
            done_in_run += 1
            if step % 50 == 0:
                rate = (time.time() - t0) / done_in_run
                log.info("mlm step %d/%d loss %.4f (%.2f s/step)", step, cfg.steps, _recent(losses), rate)
            if step % save_every == 0:
                save()
        else:
            epoch, pos = epoch + 1, 0
    save()
    stats = {"step": step, "of": cfg.steps, "epoch": epoch, "loss_first": _first(losses)}
    stats["loss_recent"] = _recent(losses)
    stats["seconds_this_run"] = round(time.time() - t_start, 1)
    log.info("mlm saved %s", stats)
    return stats


def masked_lm_loss(model: Any, inputs: Any, mask: Any, labels: Any) -> Any:
    """Cross-entropy of a ``BertForMaskedLM`` at the masked positions only (``labels`` != -100)."""
    from torch.nn import functional as F

    hidden = model.bert(input_ids=inputs, attention_mask=mask).last_hidden_state
    chosen = labels != -100
    if not bool(chosen.any()):
        return hidden.sum() * 0.0
    logits = model.cls(hidden[chosen])
    return F.cross_entropy(logits, labels[chosen])


def _recent(losses: list[float]) -> float:
    return round(float(np.mean(losses[-50:])), 4) if losses else float("nan")


def _first(losses: list[float]) -> float:
    return round(float(np.mean(losses[:50])), 4) if losses else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--shared", type=Path, default=None, help="default: settings.paths.shared_data")
    ap.add_argument("--hidden-size", type=int, default=PretrainConfig.hidden_size)
    ap.add_argument("--layers", type=int, default=PretrainConfig.num_layers)
    ap.add_argument("--steps", type=int, default=PretrainConfig.steps)
    ap.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size)
    ap.add_argument("--max-length", type=int, default=PretrainConfig.max_length)
    ap.add_argument("--max-minutes", type=float, default=1e9)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from nlp.corpus import load_records
    from yuqing.logs import setup_logging
    from yuqing.settings import load_settings

    settings = load_settings()
    setup_logging(settings, "nlp:pretrain")
    shared = args.shared or settings.paths.shared_data
    cfg = PretrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        intermediate_size=4 * args.hidden_size,
    )
    pretrain(args.out, load_records(shared), cfg, args.max_minutes, args.save_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
