"""Loading a trained classifier directory and batched CPU/GPU inference (shared by training, eval, analyzer)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

# Characters kept before tokenising: far more than max_length tokens can use, so a 100k-character text
# costs no more than a short article. The classifier reads the head of the text (documented truncation).
CHARS_PER_TOKEN_CAP = 8


def set_offline() -> None:
    """No model hub at run time: transformers and huggingface_hub must only read local directories."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def model_version(model_dir: Path) -> str:
    """``<dir name>@<first 12 hex of sha256 of the weights>``: changes whenever the weights do."""
    h = hashlib.sha256()
    for name in ("model.safetensors", "pytorch_model.bin", "weights.safetensors"):
        p = model_dir / name
        if p.exists():
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return f"{model_dir.name}@{h.hexdigest()[:12]}"
    return f"{model_dir.name}@unknown"


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def encode(tokenizer: Any, texts: list[str], max_length: int, tail_tokens: int = 0) -> list[list[int]]:
    """Token ids with [CLS]/[SEP], at most ``max_length``: the head of the text or, with ``tail_tokens`` > 0
    and a text longer than that, the first ``max_length - 2 - tail_tokens`` and the last ``tail_tokens``
    tokens (the end of a complaint often names the request or the institution)."""
    cap = max_length * CHARS_PER_TOKEN_CAP
    cut = [(t or "")[:cap] for t in texts]
    enc = tokenizer(cut, truncation=True, max_length=max_length, add_special_tokens=True)
    seqs = [list(x) for x in enc["input_ids"]]
    if tail_tokens <= 0:
        return seqs
    tail_tokens = min(tail_tokens, max_length // 2)
    long_ = [i for i, s in enumerate(seqs) if len(s) >= max_length and len(texts[i] or "") > tail_tokens]
    if long_:
        ends = [(texts[i] or "")[-tail_tokens * CHARS_PER_TOKEN_CAP :] for i in long_]
        tails = tokenizer(ends, add_special_tokens=False)["input_ids"]
        full = tokenizer([cut[i] for i in long_], add_special_tokens=False)["input_ids"]
        for i, tail, head in zip(long_, tails, full, strict=True):
            if len(head) + 2 <= max_length and len(texts[i] or "") <= cap:
                continue  # the whole text fits
            s = seqs[i]
            seqs[i] = s[: max_length - 1 - tail_tokens] + list(tail[-tail_tokens:]) + [s[-1]]
    return seqs


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def predict_proba(
    model: Any, tokenizer: Any, texts: list[str], *, batch_size: int, max_length: int, device: str = "cpu",
    progress_desc: str | None = None, tail_tokens: int = 0,
) -> dict[str, np.ndarray]:
    """Probabilities per task (rows in input order), batched by length under ``torch.inference_mode``;
    ``progress_desc`` shows the progress (long evaluations); ``tail_tokens``: see :func:`encode`."""
    import torch

    from yuqing.progress import Progress

    tasks = list(model.config.task_labels)
    out = {t: np.zeros((len(texts), len(model.config.task_labels[t])), dtype=np.float32) for t in tasks}
    if not texts:
        return out
    seqs = encode(tokenizer, texts, max_length, tail_tokens)
    pad_id = tokenizer.pad_token_id or 0
    was_training = model.training
    model.eval()
    bar = Progress(progress_desc, len(texts), unit="texts") if progress_desc else None
    with torch.inference_mode():
        for idx in length_batches([len(s) for s in seqs], batch_size):
            ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device))["logits"]
            for t in tasks:
                out[t][idx] = softmax(logits[t].float().cpu().numpy())
            if bar is not None:
                bar.update(len(idx))
    if bar is not None:
        bar.close()
    if was_training:
        model.train()
    return out


class BertClassifier:
    """A trained BERT multi-task directory (:mod:`nlp.modeling`) for the analyzer.

    ``info`` is the model config's ``classifier_info`` (written by :mod:`nlp.student`; empty for other
    checkpoints): the dev-chosen relevance threshold, whether the keyword rules are blended in, the number
    of tokens the model was trained on (``max_length``: it never reads more, since position embeddings past
    it were never trained) and how many of them come from the end of a long text (``tail_tokens``)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.task_labels: dict[str, list[str]] = dict(model.config.task_labels)
        self.info: dict[str, Any] = dict(getattr(model.config, "classifier_info", None) or {})
        self.trained_length: int | None = self.info.get("max_length")
        self.tail_tokens = int(self.info.get("tail_tokens", 0))

    def reading_length(self, max_length: int) -> int:
        """Tokens read per text: ``max_length`` (settings), capped at the length the model was trained on."""
        return min(max_length, self.trained_length) if self.trained_length else max_length

    def predict(self, texts: list[str], *, batch_size: int, max_length: int) -> dict[str, np.ndarray]:
        return predict_proba(self.model, self.tokenizer, texts, batch_size=batch_size,
                             max_length=self.reading_length(max_length), tail_tokens=self.tail_tokens)


class NgramAdapter:
    """:class:`nlp.ngram.NgramClassifier` with the analyzer's ``predict`` signature (it reads its own
    ``max_chars`` head + tail; ``max_length`` is a BERT token budget and does not apply)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.task_labels: dict[str, list[str]] = dict(model.task_labels)
        self.info: dict[str, Any] = dict(model.info)

    def predict(self, texts: list[str], *, batch_size: int, max_length: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = self.model.predict_proba(texts)
        return out


def require_model(model_dir: Path) -> None:
    """A clear refusal (:class:`yuqing.errors.ConfigError`, naming the setting) when ``model_dir`` holds no
    trained model."""
    from yuqing.errors import ConfigError

    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"no trained model in {model_dir} (no config.json there): point it at a trained model "
                          "directory (YUQING_NLP__MODEL_DIR), or set nlp.enabled to false to index without "
                          "classifying", field="nlp.model_dir")


def load_text_classifier(model_dir: Path, *, threads: int | None = None) -> BertClassifier | NgramAdapter:
    """The classifier in ``model_dir``, whichever kind its config.json names (n-gram or BERT)."""
    from nlp.ngram import NgramClassifier, is_ngram_model

    require_model(model_dir)
    if is_ngram_model(model_dir):
        return NgramAdapter(NgramClassifier.load(model_dir))
    model, tokenizer = load_classifier(model_dir, threads=threads)
    return BertClassifier(model, tokenizer)


def load_classifier(model_dir: Path, *, threads: int | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory only (HF_HUB_OFFLINE), in float32 eval mode."""
    set_offline()
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from nlp.modeling import BertForMultiTaskClassification

    hf_logging.disable_progress_bar()  # a "Loading weights" bar in every crawl process is noise (yuqing.logs)
    if threads:
        torch.set_num_threads(threads)
    require_model(model_dir)
    model = BertForMultiTaskClassification.from_pretrained(str(model_dir), local_files_only=True)
    model = model.float().to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    return model, tokenizer
