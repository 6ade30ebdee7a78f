"""The multi-task sequence-classification model: one BERT encoder, one linear head per task.

The label sets live in the model config: ``config.task_labels`` maps each task (``sentiment``,
``relevance``, ``topic``) to its ordered labels, and ``config.id2label`` / ``label2id`` hold the primary
task's (sentiment) labels, as in transformers' sequence-classification models. Saved and loaded with
``save_pretrained`` / ``from_pretrained`` like any transformers model.
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
        self.post_init()

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

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
        out: dict[str, Any] = {"logits": logits}
        if labels is not None:
            loss = pooled.new_zeros(())
            for t, y in labels.items():
                if t in logits and bool((y != -100).any()):
                    w = (task_weights or {}).get(t, 1.0)
                    loss = loss + w * nn.functional.cross_entropy(logits[t], y, ignore_index=-100)
            out["loss"] = loss
        return out
