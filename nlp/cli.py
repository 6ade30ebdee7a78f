"""``yuqing nlp train | eval | predict`` (the lead's yuqing/cli.py adds these under its ``nlp`` group)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from yuqing.settings import Settings


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser(
        "train",
        help="train a classifier from a JSON config: model_type bert_student (nlp.student, the shipped recipe), "
        "char_ngram (nlp.train_ngram) or none (nlp.train.TrainConfig)",
    )
    # dest "recipe": the top-level parser's -c/--config is the settings file
    tr.add_argument("recipe", metavar="config", type=Path, help="JSON file, e.g. nlp/configs/student.json")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config fields")
    tr.set_defaults(func=cmd_train)

    cv = sub.add_parser(
        "cv",
        help="sentiment cross-validation of the student recipe (nlp.student_cv): prepare (CPU stages, "
        "optionally an accelerator bundle), train (torch stages here), finish (heads, evaluations, summary, "
        "the shipped model)",
    )
    cv.add_argument("recipe", metavar="config", type=Path, help="the student recipe, e.g. nlp/configs/student.json")
    cv.add_argument("root", type=Path, help="the folds' work folders, e.g. .student-cv")
    cv.add_argument("step", choices=("prepare", "train", "finish"))
    cv.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config fields")
    cv.add_argument("--bundle", type=Path, help="prepare: also write an accelerator bundle (nlp/gpu_train.sh)")
    cv.set_defaults(func=cmd_cv)

    ev = sub.add_parser("eval", help="re-score a trained model: relevance and topic on the human test split "
                                     "against the keyword rules, sentiment against TF-IDF + LR")
    ev.add_argument("--model-dir", type=Path, default=None, help="default: nlp.model_dir")
    ev.add_argument("--no-dev", action="store_true", help="skip the weak-label dev split (faster)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON only")
    ev.add_argument(
        "--cv", action="store_true", help="n-gram model: recompute the sentiment cross-validation (minutes)"
    )
    ev.add_argument(
        "--record", action="store_true",
        help="student: write the test-split relevance and topic figures into the model's metrics.json (rescored, "
        "with the taxonomy's hash), after a revision of the keyword rules that leaves the weights alone",
    )
    ev.set_defaults(func=cmd_eval)

    pr = sub.add_parser("predict", help="JSON lines with a 'text' field on stdin -> one JSON line per input")
    pr.add_argument("--batch", type=int, default=256, help="lines read before each model call")
    pr.set_defaults(func=cmd_predict)


def _taxonomy_path(settings: Settings) -> Path:
    return settings.config_file("taxonomy.yaml")


def shared_data(settings: Settings) -> Path:
    """``paths.shared_data``, which training and evaluation read; a clear refusal when it is not there (the
    held-out list in it decides what may be read at all)."""
    from nlp.corpus import HOLDOUT_IDS
    from yuqing.errors import ConfigError

    folder = settings.paths.shared_data
    if not (folder / HOLDOUT_IDS).is_file():
        raise ConfigError(f"the shared data is not at {folder} (no {HOLDOUT_IDS} there): training and evaluation "
                          "read it; set paths.shared_data or YUQING_PATHS__SHARED_DATA to its folder")
    return folder


def cmd_cv(args: argparse.Namespace, settings: Settings) -> int:
    from nlp import student, student_cv

    scfg = student.apply_overrides(student.StudentConfig.from_json(args.recipe), list(args.overrides))
    if scfg.taxonomy == student.StudentConfig.taxonomy:
        scfg.taxonomy = str(_taxonomy_path(settings))
    return student_cv.run(scfg, shared_data(settings), args.root, args.step, args.bundle)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    model_type = json.loads(Path(args.recipe).read_text(encoding="utf-8")).get("model_type")
    if model_type == "bert_student":
        from nlp import student

        scfg = student.apply_overrides(student.StudentConfig.from_json(args.recipe), list(args.overrides))
        if scfg.taxonomy == student.StudentConfig.taxonomy:
            scfg.taxonomy = str(_taxonomy_path(settings))
        res = student.run(scfg, shared_data(settings))
        keys = ("selection", "sentiment_fold", "test")
        print(json.dumps({k: res[k] for k in keys if k in res} or res, ensure_ascii=False))
        return 0
    if model_type == "char_ngram":
        from nlp import train_ngram

        ncfg = train_ngram.apply_overrides(train_ngram.NgramTrainConfig.from_json(args.recipe), list(args.overrides))
        if ncfg.taxonomy == train_ngram.NgramTrainConfig.taxonomy:
            ncfg.taxonomy = str(_taxonomy_path(settings))
        res = train_ngram.run(ncfg, shared_data(settings))
        print(json.dumps({k: res[k] for k in ("selection", "test", "sentiment_cv") if k in res}, ensure_ascii=False))
        return 0
    from nlp.train import TrainConfig, apply_overrides, train

    cfg = apply_overrides(TrainConfig.from_json(args.recipe), list(args.overrides))
    if cfg.shared_data is None:
        cfg.shared_data = str(shared_data(settings))
    if cfg.taxonomy == TrainConfig.taxonomy:
        cfg.taxonomy = str(_taxonomy_path(settings))
    metrics = train(cfg)
    print(json.dumps(metrics.get("eval", {}), ensure_ascii=False, indent=1))
    return 0


def evaluate_model(model_dir: Path, settings: Settings, *, with_dev: bool = True) -> dict[str, Any]:
    """The model card's scores, recomputed: SMP2020 eval splits, and dev (rebuilt from the shared data with
    the seed and options in the model's train_config.json) when ``with_dev``."""
    from nlp.data import Example, build_training_examples, load_sentiment_eval, split_dev
    from nlp.inference import load_classifier
    from nlp.taxonomy import load_taxonomy
    from nlp.train import TrainConfig, evaluate

    cfg_path = model_dir / "train_config.json"
    cfg = TrainConfig.from_json(cfg_path) if cfg_path.exists() else TrainConfig()
    cfg.device = "cpu"
    shared = shared_data(settings)
    model, tokenizer = load_classifier(model_dir, threads=settings.nlp.threads)
    evals = {
        name: [Example(t, sentiment=s, source=name) for t, s in rows]
        for name, rows in load_sentiment_eval(shared).items()
    }
    dev: list[Example] = []
    if with_dev:
        tax = load_taxonomy(_taxonomy_path(settings))
        examples = build_training_examples(
            shared, tax, use_reviews=cfg.use_reviews, reviews_per_source=cfg.reviews_per_source, seed=cfg.seed
        )
        _, dev = split_dev(examples, cfg.dev_fraction, cfg.seed)
    res = evaluate(model, tokenizer, cfg, dev, evals, "cpu")
    if not with_dev:
        for task in list(res):
            res[task].pop("dev", None)
    return res


def evaluate_ngram(model_dir: Path, settings: Settings, *, cv: bool = False) -> dict[str, Any]:
    """The n-gram model's card figures, recomputed: relevance (model vs keyword rules) and topic on the human
    test split, at the configured ``nlp.relevance_threshold``; sentiment cross-validation when ``cv``."""
    from nlp import train_ngram
    from nlp.human_labels import split_of
    from nlp.ngram import NgramClassifier
    from nlp.taxonomy import load_taxonomy

    cfg = train_ngram.NgramTrainConfig.from_json(model_dir / "train_config.json")
    cfg.taxonomy = str(_taxonomy_path(settings))
    model = NgramClassifier.load(model_dir)
    ds = train_ngram.load_dataset(shared_data(settings), cfg)
    tax = load_taxonomy(Path(cfg.taxonomy))
    test_rows = [r for r in ds.labels if r.relevant is not None and split_of(r.uid) == "test"]
    thr = settings.nlp.relevance_threshold
    card_path = model_dir / "metrics.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    sel = card.get("selection", {})
    blend = bool(model.info.get("blend_rules"))
    # the configured threshold applies to the deployed variant; the other is scored at its own dev threshold
    thr_model = sel.get("relevance_threshold", thr) if blend else thr
    thr_blend = thr if blend else sel.get("rule_blended_threshold", thr)
    res: dict[str, Any] = {
        "relevance_threshold": thr,
        "blend_rules": blend,
        "test": train_ngram.evaluate_test(model, ds, tax, test_rows, thr_model, thr_blend),
    }
    if cv:
        res["sentiment_cv"] = train_ngram.sentiment_cv(ds, cfg)
    elif "sentiment_cv" in card:
        res["sentiment_cv_from_card"] = card["sentiment_cv"]
    return res


def _print_ngram_eval(res: dict[str, Any]) -> None:
    _print_relevance(res)
    cv = res.get("sentiment_cv") or res.get("sentiment_cv_from_card")
    if cv:
        src = "" if "sentiment_cv" in res else " (from metrics.json; --cv recomputes)"
        print(f"sentiment, {cv['folds']}-fold cross-validation{src}: macro-F1 / accuracy")
        for part in ("posts", "usual_eval_posts", "all"):
            m, b = cv["model"][part], cv["baseline"][part]
            print(f"  {part:<17} n {m['n']:>6}  model {m['macro_f1']:.4f} / {m['accuracy']:.4f}   "
                  f"TF-IDF+LR baseline {b['macro_f1']:.4f} / {b['accuracy']:.4f}")


def _print_readings(res: dict[str, Any]) -> None:
    """The test split's two readings: how far they agree, and the deployed model on the first reading alone."""
    a = res["annotators"]
    if a is not None:
        print(f"the test split read twice (independently; {a['adjudicated']} differing texts adjudicated, the "
              f"gold above): relevance agreement {a['observed']:.4f}, Cohen's kappa {a['kappa']:.4f}; one reading "
              f"scored against the other F1 {a['positive_f1']:.4f} (uncertain as not relevant; "
              f"{a['positive_f1_certain']:.4f} where both were certain); same topic on {a['topics_compared']} texts "
              f"both called relevant: {a['topic_agreement']}")
        if "train" in a:
            tr = a["train"]
            print(f"the train split read twice too ({tr['n']} texts, {tr['adjudicated']} adjudicated): Cohen's kappa "
                  f"{tr['kappa']:.4f}; one reading against the other F1 {tr['positive_f1']:.4f} "
                  f"({tr['first_relevant']} / {tr['second_relevant']} relevant, {tr['both_relevant']} both)")
    t = res["test_first_reading"]
    deployed = "model_plus_rules" if res["blend_rules"] else "model"
    m, r = t[f"relevance_{deployed}"], t["relevance_keyword_rules"]
    print(f"on the first reading alone ({t['n']} texts, {t['relevant']} relevant): {deployed} F1 {m['f1']:.4f} "
          f"(P {m['precision']:.4f}, R {m['recall']:.4f}), keyword rules F1 {r['f1']:.4f}")


def _print_relevance(res: dict[str, Any]) -> None:
    t = res["test"]
    deployed = "model_plus_rules" if res["blend_rules"] else "model"
    print(f"relevance on the human test split: {t['n']} texts, {t['relevant']} relevant; "
          f"threshold {res['relevance_threshold']} ({deployed} deployed)")
    print(f"{'':<18} {'precision':>9} {'recall':>7} {'F1':>7}   F1 95% CI")
    for name in ("model", "model_plus_rules", "keyword_rules"):
        m = t[f"relevance_{name}"]
        mark = " *" if name == deployed else ""
        print(f"{name + mark:<18} {m['precision']:>9.4f} {m['recall']:>7.4f} {m['f1']:>7.4f}   {m['f1_95ci']}")
    ta = t["topic_accuracy"]
    print(f"topic accuracy on the {ta['n']} relevant test texts: model {ta['model']}, "
          f"model + rules {ta['model_plus_rules']}, keyword rules {ta['keyword_rules']}")


def evaluate_student(model_dir: Path, settings: Settings) -> dict[str, Any]:
    """The student's card figures, recomputed on the human test split at the configured
    ``nlp.relevance_threshold`` (relevance: model, model + keyword rules, keyword rules alone; topic); the
    sentiment figures of the held-out fold and of the cross-validation come from the training run
    (``metrics.json``: scoring them needs the dev runs' models, which saw none of their folds;
    ``bench/classifier.py`` recomputes them when the work folders are there)."""
    from nlp import student, train_ngram
    from nlp.human_labels import first_reading, reading_agreement, second_reading_file, split_of
    from nlp.inference import BertClassifier, load_text_classifier
    from nlp.taxonomy import load_taxonomy

    cfg = student.StudentConfig.from_json(model_dir / "train_config.json")
    cfg.taxonomy = str(_taxonomy_path(settings))
    clf = load_text_classifier(model_dir, threads=settings.nlp.threads)
    assert isinstance(clf, BertClassifier)
    ds = train_ngram.load_dataset(shared_data(settings), student.teacher_config(cfg))
    tax = load_taxonomy(Path(cfg.taxonomy))
    card = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    sel = card["selection"]
    thr = settings.nlp.relevance_threshold
    blend = bool(clf.info.get("blend_rules"))
    # the configured threshold applies to the deployed variant; the other is scored at its own dev threshold
    thr_model = sel["relevance_threshold"] if blend else thr
    thr_blend = thr if blend else sel["rule_blended_threshold"]
    pred = student.StudentPredictor(clf.model, clf.tokenizer, clf.reading_length(settings.nlp.max_length),
                                    clf.tail_tokens, settings.nlp.batch_size)
    labels_path = Path(student.teacher_config(cfg).labels)
    first = [r for r in first_reading(tax.names, labels_path) if r.relevant is not None and split_of(r.uid) == "test"]
    return {
        "relevance_threshold": thr,
        "blend_rules": blend,
        "test": train_ngram.evaluate_test(pred, ds, tax, student.test_rows_of(ds), thr_model, thr_blend),
        "test_first_reading": train_ngram.evaluate_test(pred, ds, tax, first, thr_model, thr_blend),
        "annotators": (reading_agreement(tax.names, labels_path) if second_reading_file(labels_path).exists()
                       else None),
        "sentiment_fold_from_card": card["sentiment_fold"],
        "sentiment_cv_from_card": card.get("sentiment_cv"),
    }


RESCORED_KEYS = ("relevance_model", "relevance_model_plus_rules", "relevance_keyword_rules", "topic_accuracy")


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_rescore(model_dir: Path, res: dict[str, Any], taxonomy_path: Path, at: str) -> dict[str, Any]:
    """Write ``res``'s test-split relevance and topic figures (:func:`evaluate_student`) into the model's
    ``metrics.json`` as ``rescored``, with the hash of the taxonomy they were scored with: the training run's own
    figures (``test``) stay as they were, scored with the rules of that time. Returns the block written."""
    path = model_dir / "metrics.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    block = {
        "at": at,
        "why": "the keyword rules of the taxonomy revised; the weights, threshold and blending are the training run's",
        "taxonomy_sha256": file_sha256(taxonomy_path),
        "relevance_threshold": res["relevance_threshold"],
        "test": {k: res["test"][k] for k in RESCORED_KEYS},
        "test_first_reading": {k: res["test_first_reading"][k] for k in RESCORED_KEYS},
    }
    card["rescored"] = block
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return block


def _print_student_eval(res: dict[str, Any]) -> None:
    _print_relevance(res)
    _print_readings(res)
    sf = res["sentiment_fold_from_card"]
    print(f"sentiment on held-out fold {sf['fold']} of {sf['of']} (the dev run, trained on the other "
          f"{sf['trained_on']} rows; from metrics.json): macro-F1 / accuracy")
    for part in ("posts", "usual_eval_posts", "all"):
        m, t, b = sf["model"][part], sf["teacher"][part], sf["baseline"][part]
        print(f"  {part:<17} n {m['n']:>5}  model {m['macro_f1']:.4f} / {m['accuracy']:.4f}   "
              f"n-gram teacher {t['macro_f1']:.4f} / {t['accuracy']:.4f}   "
              f"TF-IDF+LR baseline {b['macro_f1']:.4f} / {b['accuracy']:.4f}")
    cv = res.get("sentiment_cv_from_card")
    if cv:
        print(f"sentiment by {len(cv['folds'])}-fold cross-validation (each fold scored by its own dev run; from "
              "metrics.json): macro-F1 mean ± sd")
        _print_cv_parts(cv)
        un = cv.get("unselected")
        if un:
            print(f"  without fold {un['selected_on']}, on which the sentiment head was chosen (folds {un['folds']}):")
            _print_cv_parts(un)


def _print_cv_parts(cv: dict[str, Any]) -> None:
    for part in ("posts", "usual_eval_posts", "all"):
        m, b, d = cv["model"][part], cv["baseline"][part], cv["model_minus_baseline"][part]
        line = (f"  {part:<17} n {m['n']:>5}  model {m['macro_f1']:.4f} ± {m['macro_f1_sd']:.4f}   "
                f"TF-IDF+LR baseline {b['macro_f1']:.4f} ± {b['macro_f1_sd']:.4f}   difference {d['mean']:+.4f}")
        if "model_minus_baseline_post_weighted" in cv:
            line += (f"   (baseline with the posts weighted as the model's head has them "
                     f"{cv['baseline_post_weighted'][part]['macro_f1']:.4f}, difference "
                     f"{cv['model_minus_baseline_post_weighted'][part]['mean']:+.4f})")
        print(line)


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    model_dir = args.model_dir or settings.nlp.model_dir
    from nlp.ngram import is_ngram_model
    from nlp.student import is_student_model

    if is_student_model(Path(model_dir)):
        sres = evaluate_student(Path(model_dir), settings)
        if args.record:
            from datetime import UTC, datetime

            record_rescore(Path(model_dir), sres, _taxonomy_path(settings),
                           datetime.now(UTC).isoformat(timespec="seconds"))
            print(f"recorded in {Path(model_dir) / 'metrics.json'} (rescored)", file=sys.stderr)
        if args.json:
            print(json.dumps(sres, ensure_ascii=False))
        else:
            _print_student_eval(sres)
        return 0

    if is_ngram_model(Path(model_dir)):
        nres = evaluate_ngram(Path(model_dir), settings, cv=args.cv)
        if args.json:
            print(json.dumps(nres, ensure_ascii=False))
        else:
            _print_ngram_eval(nres)
        return 0
    res = evaluate_model(Path(model_dir), settings, with_dev=not args.no_dev)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return 0
    card_path = Path(model_dir) / "metrics.json"
    card = json.loads(card_path.read_text(encoding="utf-8")).get("eval", {}) if card_path.exists() else {}
    print(f"{'task':<10} {'split':<14} {'accuracy':>9} {'macro_f1':>9} {'n':>6}   card acc / F1")
    for task, splits in res.items():
        for split, m in splits.items():
            ref = card.get(task, {}).get(split, {})
            ref_s = f"{ref.get('accuracy', '-')} / {ref.get('macro_f1', '-')}" if ref else "-"
            print(f"{task:<10} {split:<14} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f} {m['n']:>6}   {ref_s}")
    return 0


def _emit(out: IO[str], analyzer: Any, batch: list[tuple[int, dict[str, Any] | None, str | None]]) -> None:
    texts = [rec.get("text", "") if rec is not None else "" for _, rec, _ in batch]
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    results = analyzer.analyze(texts)
    for (line_no, rec, err), res in zip(batch, results, strict=True):
        if err is not None or rec is None:
            row: dict[str, Any] = {"line": line_no, "error": err}
        else:
            row = res.model_dump()
            row["relevance"] = "relevant" if res.relevant else "not_relevant"
            row["topic_unit"] = analyzer.taxonomy.unit_of(res.topic) if res.topic else None
            if "id" in rec:
                row = {"id": rec["id"], **row}
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.flush()


def run_predict(settings: Settings, stdin: IO[str], stdout: IO[str], batch_size: int = 256) -> int:
    """Stream JSON lines from ``stdin`` to analyses on ``stdout`` (one output line per input line; a line
    that is not a JSON object with a string ``text`` gives ``{"line": N, "error": ...}``)."""
    from nlp.analyzer import get_analyzer

    analyzer = get_analyzer(settings.nlp, _taxonomy_path(settings))
    batch: list[tuple[int, dict[str, Any] | None, str | None]] = []
    errors = 0
    for line_no, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        rec: dict[str, Any] | None = None
        err: str | None = None
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("text", ""), str):
                err = "expected a JSON object with a string 'text' field"
            else:
                rec = obj
        except json.JSONDecodeError as exc:
            err = f"invalid JSON: {exc.msg}"
        errors += err is not None
        batch.append((line_no, rec, err))
        if len(batch) >= batch_size:
            _emit(stdout, analyzer, batch)
            batch = []
    if batch:
        _emit(stdout, analyzer, batch)
    return 1 if errors else 0


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    return run_predict(settings, sys.stdin, sys.stdout, max(1, args.batch))


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m nlp.cli predict < posts.jsonl``); the project CLI is ``yuqing nlp``."""
    from yuqing.logs import setup_logging
    from yuqing.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m nlp.cli", description=__doc__)
    add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    settings = load_settings()
    setup_logging(settings, f"nlp:{args.cmd}")
    rc: int = args.func(args, settings)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
