"""Sentiment cross-validation of the student recipe (:mod:`nlp.student`): one dev run per sentiment fold.

Fold ``k``'s student is the recipe's dev run with ``sentiment_eval_fold = k``: its own vocabulary and masked-LM
pretraining (which never read fold ``k``'s texts, nor the relevance dev folds or the test split), its own
teachers fitted on its own rows, fine-tuning, n-gram heads, then scored on fold ``k`` against the char TF-IDF +
LR baseline fitted on the same rows. The recipe's own evaluation fold (``sentiment_eval_fold`` of the config)
is the recipe's work folder: its dev run also makes the relevance selection and its final run (every labelled
row) is the shipped model, so the folds' figures describe exactly the recipe that is shipped. Each fold is a
student ``work_dir`` under ROOT (``ROOT/fold<k>``), with every stage resumable.

    yuqing nlp cv CONFIG ROOT prepare [--bundle DIR]   # vocabularies, teachers (CPU); a bundle for a GPU
    yuqing nlp cv CONFIG ROOT train [--device auto]     # pretraining and fine-tuning, here (CPU or GPU)
    yuqing nlp cv CONFIG ROOT finish                    # heads, evaluations, the summary, the shipped model

A bundle from ``prepare --bundle`` is trained on an
accelerator machine by ``python -m nlp.student_bundle train`` and brought back with ``python -m
nlp.student_bundle unpack RESULTS ROOT`` before ``finish``.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PARTS = ("model", "model_encoder_only", "teacher", "baseline", "baseline_post_weighted")


def fold_config(cfg: Any, root: Path, k: int) -> Any:
    """The recipe's options for fold ``k``: its own work folder; only the recipe's evaluation fold keeps the
    final run and the shipped output folder."""
    own = k == cfg.sentiment_eval_fold
    return replace(
        cfg,
        sentiment_eval_fold=k,
        work_dir=str(root / f"fold{k}"),
        final_run=cfg.final_run and own,
        output_dir=cfg.output_dir if own else str(root / f"fold{k}" / "model"),
    )


def fold_order(cfg: Any) -> list[int]:
    """Every fold, the recipe's own last (its final run writes the shipped model, which gets the summary)."""
    return [k for k in range(cfg.folds) if k != cfg.sentiment_eval_fold] + [cfg.sentiment_eval_fold]


def _share_e5(root: Path, first: Path, work: Path) -> None:
    """Folds share the e5 teacher's encoder and its (label-free) embedding cache: relative links to the first
    fold's, so the 12-layer encoder embeds each text once."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("e5", "e5_emb"):
        link = work / name
        if work != first and not link.exists():
            link.symlink_to(os.path.relpath(first / name, work))


def prepare(cfg: Any, ds: Any, root: Path, bundle: Path | None = None) -> list[str]:
    """The CPU stages of every fold (vocabulary and pretraining sequences, the teachers' soft labels); with
    ``bundle``, also the accelerator bundle of every torch stage not done yet. Returns the folds' names."""
    from nlp import student
    from nlp.pretrain import prepare_sequences

    parts = []
    table = None
    if bundle is not None:
        from nlp.student_bundle import TextTable, export_part, write_manifest

        bundle.mkdir(parents=True, exist_ok=True)
        table = TextTable()
    first = Path(fold_config(cfg, root, fold_order(cfg)[0]).work_dir)
    names = []
    for k in fold_order(cfg):
        fcfg = fold_config(cfg, root, k)
        work = Path(fcfg.work_dir)
        _share_e5(root, first, work)
        splits = student.make_splits(ds, fcfg)
        if not (work / "mlm" / "done.json").exists():
            prepare_sequences(work / "mlm", student.pretraining_records(ds, splits), student.pretrain_config(fcfg))
        teacher = student.stage_teacher(fcfg, ds, splits)
        log.info("fold %d prepared in %s", k, work)
        names.append(work.name)
        if bundle is not None and table is not None:
            parts.append(export_part(bundle, work.name, fcfg, ds, splits, teacher, table))
    if bundle is not None and table is not None:
        write_manifest(bundle, parts, table)
    return names


def train(cfg: Any, ds: Any, root: Path) -> None:
    """Pretraining and fine-tuning of every fold here (``cfg.device``), one after the other."""
    from nlp import student

    for k in fold_order(cfg):
        student.run_stages(fold_config(cfg, root, k), ds, only="dev")
        if fold_config(cfg, root, k).final_run:
            student.run_stages(fold_config(cfg, root, k), ds, only="final")


def _differences(folds: dict[int, dict[str, Any]], ks: list[int], subsets: list[str],
                 baseline: str) -> dict[str, dict[str, float]]:
    out = {}
    for sub in subsets:
        d = [folds[k]["model"][sub]["macro_f1"] - folds[k][baseline][sub]["macro_f1"] for k in ks]
        out[sub] = {
            "mean": round(statistics.fmean(d), 4),
            "sd": round(statistics.stdev(d), 4) if len(d) > 1 else 0.0,
            "min": round(min(d), 4),
            "max": round(max(d), 4),
        }
    return out


def summarize(folds: dict[int, dict[str, Any]], selected_on: int | None = None) -> dict[str, Any]:
    """Mean, standard deviation and per-fold macro-F1 / accuracy of each scorer on each part of the folds, and
    the paired difference model − baseline (from ``metrics.json`` → ``sentiment_fold`` of every fold).
    ``selected_on``: a fold something was chosen on; ``unselected`` then holds the same figures over the
    other folds alone (the estimate free of that choice)."""
    ks = sorted(folds)
    out: dict[str, Any] = {"folds": ks, "of": folds[ks[0]]["of"],
                           "trained_on": {str(k): folds[k]["trained_on"] for k in ks}}
    subsets = list(folds[ks[0]]["model"])
    for scorer in PARTS:
        if not all(scorer in folds[k] for k in ks):
            continue
        out[scorer] = {}
        for sub in subsets:
            f1 = [folds[k][scorer][sub]["macro_f1"] for k in ks]
            acc = [folds[k][scorer][sub]["accuracy"] for k in ks]
            out[scorer][sub] = {
                "macro_f1": round(statistics.fmean(f1), 4),
                "macro_f1_sd": round(statistics.stdev(f1), 4) if len(f1) > 1 else 0.0,
                "accuracy": round(statistics.fmean(acc), 4),
                "n": sum(folds[k][scorer][sub]["n"] for k in ks),
                "per_fold_macro_f1": f1,
            }
    out["fold_figures"] = {str(k): folds[k] for k in ks}
    out["model_minus_baseline"] = _differences(folds, ks, subsets, "baseline")
    if "baseline_post_weighted" in out:
        out["model_minus_baseline_post_weighted"] = _differences(folds, ks, subsets, "baseline_post_weighted")
    if selected_on is not None:
        if selected_on not in folds:
            raise ValueError(f"selected on fold {selected_on}, which is not among the folds {ks}")
        rest = [k for k in ks if k != selected_on]
        if not rest:
            raise ValueError(f"every fold ({ks}) was selected on: no estimate free of the choice")
        out["unselected"] = {key: val for key, val in summarize({k: folds[k] for k in rest}).items()
                             if key != "fold_figures"}
        out["unselected"]["selected_on"] = selected_on
    return out


def finish(cfg: Any, ds: Any, root: Path) -> dict[str, Any]:
    """Every fold's remaining stages (n-gram heads, selection, evaluation; the recipe's fold last, which saves
    the shipped model), then the cross-validation summary: ``ROOT/sentiment_cv.json`` and ``metrics.json`` →
    ``sentiment_cv`` of the shipped model."""
    from nlp import student

    for k in fold_order(cfg):  # finish trains nothing: every fold's runs must be there
        fcfg = fold_config(cfg, root, k)
        work = Path(fcfg.work_dir)
        missing = [str(p) for p in [work / "mlm" / "done.json"] + [
            work / f"run_{run}" / "model" / "config.json" for run in (student.RUNS if fcfg.final_run else ("dev",))]
            if not p.exists()]
        if missing:
            raise RuntimeError(f"fold {k} is not finished ({', '.join(missing)} missing): run the train step "
                               "(or unpack a trained bundle) first")
    folds: dict[int, dict[str, Any]] = {}
    for k in fold_order(cfg):
        folds[k] = student.run_stages(fold_config(cfg, root, k), ds)["sentiment_fold"]
    summary = summarize(folds, cfg.sentiment_eval_fold if cfg.sentiment_selected_on_eval_fold else None)
    (root / "sentiment_cv.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    shipped = Path(cfg.output_dir) / "metrics.json"
    metrics = json.loads(shipped.read_text(encoding="utf-8"))
    metrics["sentiment_cv"] = summary
    shipped.write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    for sub in ("posts", "all"):
        log.info("sentiment %d-fold CV, %s: model macro-F1 %.4f ± %.4f, baseline %.4f ± %.4f, difference %+.4f",
                 len(folds), sub, summary["model"][sub]["macro_f1"], summary["model"][sub]["macro_f1_sd"],
                 summary["baseline"][sub]["macro_f1"], summary["baseline"][sub]["macro_f1_sd"],
                 summary["model_minus_baseline"][sub]["mean"])
        if "unselected" in summary:
            un = summary["unselected"]
            log.info("  without fold %d (chosen on): folds %s, model %.4f, baseline %.4f, difference %+.4f",
                     un["selected_on"], un["folds"], un["model"][sub]["macro_f1"], un["baseline"][sub]["macro_f1"],
                     un["model_minus_baseline"][sub]["mean"])
    return summary


STEPS = ("prepare", "train", "finish")


def run(cfg: Any, shared: Path, root: Path, step: str, bundle: Path | None = None) -> int:
    from nlp import student
    from nlp.train_ngram import load_dataset

    if step not in STEPS:
        raise ValueError(f"step {step!r}: one of {STEPS}")
    ds = load_dataset(shared, student.teacher_config(cfg))
    root.mkdir(parents=True, exist_ok=True)
    if step == "prepare":
        prepare(cfg, ds, root, bundle)
    elif step == "train":
        train(cfg, ds, root)
    else:
        finish(cfg, ds, root)
    return 0
