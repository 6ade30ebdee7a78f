"""The multi-task sequence-classification model: one BERT encoder, one linear head per task.

The label sets live in the model config: ``config.task_labels`` maps each task (``sentiment``,
``relevance``, ``topic``) to its ordered labels, and ``config.id2label`` / ``label2id`` hold the primary
task's (sentiment) labels, as in transformers' sequence-classification models. Saved and loaded with
``save_pretrained`` / ``from_pretrained`` like any transformers model.

A task may also carry a hashed character n-gram TF-IDF + logistic-regression head (:mod:`nlp.ngram_head`),
fitted after fine-tuning and attached with :meth:`BertForMultiTaskClassification.attach_ngram_head`;
``config.ngram_heads`` names it (buckets, n-gram orders, its share ``weight`` of the probabilities). The
task's logits are then ``log((1 - w) * softmax(encoder) + w * softmax(n-gram))``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel

TASKS: tuple[str, ...] = ("sentiment", "relevance", "topic")
PRIMARY_TASK = "sentiment"


def configure_labels(config: BertConfig, task_labels: dict[str, list[str]]) -> BertConfig:
    """Store the task label sets in ``config`` (primary task's labels also as id2label/label2id)."""
    config.task_labels = {t: list(v) for t, v in task_labels.items()}
    primary = task_labels[PRIMARY_TASK]
    config.id2label = dict(enumerate(primary))
    config.label2id = {label: i for i, label in enumerate(primary)}
    config.num_labels = len(primary)
    return config


class NgramHead(nn.Module):
    """Hashed n-gram TF-IDF + linear layer over the token ids (weights fitted by scikit-learn, frozen)."""

    def __init__(self, buckets: int, n_classes: int, orders: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.orders = orders
        self.idf = nn.Parameter(torch.zeros(buckets), requires_grad=False)
        self.weight = nn.Parameter(torch.zeros(buckets, n_classes), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(n_classes), requires_grad=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        from nlp.ngram_head import ngram_keys_torch

        n = input_ids.shape[0]
        rows, keys = ngram_keys_torch(input_ids, attention_mask, self.orders)
        cell, counts = torch.unique(rows * self.buckets + keys % self.buckets, return_counts=True)
        r, c = cell // self.buckets, cell % self.buckets
        idf, weight = self.idf.float(), self.weight.float()
        v = (1.0 + torch.log(counts.float())) * idf[c]
        norm = torch.zeros(n, device=v.device).index_add_(0, r, v * v).sqrt().clamp(min=1e-12)
        score = torch.zeros(n, weight.shape[1], device=v.device).index_add_(0, r, v.unsqueeze(1) * weight[c])
        return score / norm.unsqueeze(1) + self.bias.float()


class BertForMultiTaskClassification(BertPreTrainedModel):
    """BERT encoder + mean pooling + one classification head per task in ``config.task_labels``."""

    config_class = BertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        task_labels: dict[str, list[str]] = getattr(config, "task_labels", None) or {}
        if not task_labels:
            raise ValueError("config.task_labels is missing: call configure_labels() first")
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.heads = nn.ModuleDict({t: nn.Linear(config.hidden_size, len(v)) for t, v in task_labels.items()})
        spec: dict[str, dict[str, Any]] = getattr(config, "ngram_heads", None) or {}
        unknown = sorted(set(spec) - set(task_labels))
        if unknown:
            raise ValueError(f"config.ngram_heads names unknown task(s) {unknown}")
        self.ngram_heads = nn.ModuleDict({t: NgramHead(int(v["buckets"]), len(task_labels[t]), int(v["orders"]))
                                          for t, v in spec.items()})
        self.use_ngram_heads = True  # False: the encoder's heads alone (evaluation of the parts)
        self.post_init()

    def attach_ngram_head(self, task: str, idf: Any, weight: Any, bias: Any, *, share: float, orders: int) -> None:
        """Add (or replace) ``task``'s n-gram head with fitted weights; ``share`` of the probabilities."""
        if task not in self.heads:
            raise ValueError(f"no task {task!r}; tasks: {list(self.heads)}")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"n-gram head share {share}: must be in (0, 1]")
        head = NgramHead(len(idf), len(self.config.task_labels[task]), orders)
        with torch.no_grad():
            head.idf.copy_(torch.as_tensor(idf))
            head.weight.copy_(torch.as_tensor(weight))
            head.bias.copy_(torch.as_tensor(bias))
        self.ngram_heads[task] = head.to(self.device)
        spec = dict(getattr(self.config, "ngram_heads", None) or {})
        spec[task] = {"buckets": len(idf), "orders": orders, "weight": share}
        self.config.ngram_heads = spec

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def detach_ngram_head(self, task: str) -> None:
        """Remove ``task``'s n-gram head (its encoder head alone gives the task's probabilities again)."""
        del self.ngram_heads[task]
        spec = dict(self.config.ngram_heads)
        spec.pop(task)
        self.config.ngram_heads = spec

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: dict[str, torch.Tensor] | None = None,
        task_weights: dict[str, float] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        pooled = self.dropout(self.pooled(input_ids, attention_mask))
        logits = {t: head(pooled) for t, head in self.heads.items()}
        if self.use_ngram_heads:
            for t, ngram in self.ngram_heads.items():
                w = float(self.config.ngram_heads[t]["weight"])
                p = (1.0 - w) * logits[t].softmax(-1) + w * ngram(input_ids, attention_mask).softmax(-1)
                logits[t] = p.clamp(min=1e-12).log()
        out: dict[str, Any] = {"logits": logits}
        if labels is not None:
            loss = pooled.new_zeros(())
            for t, y in labels.items():
                if t in logits and bool((y != -100).any()):
                    w = (task_weights or {}).get(t, 1.0)
                    loss = loss + w * nn.functional.cross_entropy(logits[t], y, ignore_index=-100)
            out["loss"] = loss
        return out
