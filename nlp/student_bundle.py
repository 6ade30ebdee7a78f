"""Accelerator bundles: the torch stages of :mod:`nlp.student` (masked-LM pretraining and fine-tuning) run on a
machine that has neither ``../shared/data`` nor the CPU stages' dependencies (jieba, pydantic, openpyxl).

A bundle is a folder written here after the CPU stages (vocabulary, teachers, soft labels); it holds, per
student work folder (a *part*: the shipped recipe's, or one cross-validation fold's), only what the torch stages
read: the options, the tokenizer, the indices of the pretraining texts and, per fine-tuning run, the rows with
their hard labels, weights and teacher soft labels. The texts themselves are stored once for all parts
(``texts.json.gz``) and tokenised there with each part's own tokenizer, exactly as here.

    python -m nlp.student_bundle train BUNDLE OUT [--device cuda] [--jobs 6] [--work DIR]  # accelerator machine
    python -m nlp.student_bundle unpack RESULTS ROOT                         # here, into the work folders

``train`` writes one ``<part>_<run>.tar`` per fine-tuning run into OUT (the run's float16 weights, its
statistics and, with the part's first run, the finished masked-LM stage's record); ``unpack`` extracts them into
``ROOT/<part>/`` (each a student ``work_dir``), where ``yuqing nlp train`` then finds the runs done and goes on
with the n-gram heads, the selection, the evaluations and the shipped model. Parts run in parallel processes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TEXTS = "texts.json.gz"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class Part:
    """One student work folder in a bundle: its name and the fine-tuning runs it holds."""

    name: str
    runs: tuple[str, ...]


# --- writing a bundle (here, after the CPU stages) -----------------------------------------------------------


class TextTable:
    """uid → index of the bundle's shared text list (texts added once, in order of first use)."""

    def __init__(self) -> None:
        self.uids: list[str] = []
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, uid: str, text: str) -> int:
        i = self._index.get(uid)
        if i is None:
            i = self._index[uid] = len(self.uids)
            self.uids.append(uid)
            self.texts.append(text)
        return i

    def write(self, bundle: Path) -> None:
        with gzip.open(bundle / TEXTS, "wt", encoding="utf-8") as f:
            json.dump({"uids": self.uids, "texts": self.texts}, f, ensure_ascii=False)


def export_part(bundle: Path, name: str, cfg: Any, ds: Any, splits: Any, teacher: dict[str, dict[str, np.ndarray]],
                table: TextTable) -> Part:
    """Write part ``name`` (the work folder of ``cfg``): its options, tokenizer, pretraining rows (unless its
    masked-LM stage is done here, then the encoder) and the data of each fine-tuning run not done yet."""
    from transformers import AutoTokenizer

    from nlp import student

    work = Path(cfg.work_dir)
    mlm = work / "mlm"
    if not (mlm / "encoder" / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"{mlm / 'encoder'} has no tokenizer: run the CPU stages first (yuqing nlp cv prepare)")
    dest = bundle / "parts" / name
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "encoder").mkdir(parents=True)
    (dest / "config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    (dest / "task_labels.json").write_text(
        json.dumps(student.task_labels_for(cfg, list(ds.topics)), ensure_ascii=False), encoding="utf-8")
    if (mlm / "done.json").exists():  # pretrained here: the encoder travels instead of the texts
        shutil.copytree(mlm / "encoder", dest / "encoder", dirs_exist_ok=True)
        shutil.copy2(mlm / "done.json", dest / "mlm_done.json")
    else:
        for f in TOKENIZER_FILES:
            if (mlm / "encoder" / f).exists():
                shutil.copy2(mlm / "encoder" / f, dest / "encoder" / f)
        recs = student.pretraining_records(ds, splits)
        np.save(dest / "mlm_rows.npy", np.array([table.add(r.uid, r.text) for r in recs], dtype=np.int32))
    tok = AutoTokenizer.from_pretrained(str(mlm / "encoder"), local_files_only=True)
    runs = []
    for run in student.RUNS if cfg.final_run else ("dev",):
        if (work / f"run_{run}" / "model" / "config.json").exists():
            continue
        data = student.build_run_data(cfg, ds, splits, run, tok, teacher[run])
        arrays: dict[str, Any] = {
            "rows": np.array([table.add(u, ds.records[u].text) for u in data.uids], dtype=np.int32),
            "human": np.array(data.human, dtype=np.int32),
        }
        for t, v in data.hard.items():
            arrays[f"hard_{t}"] = v.astype(np.int16)
            arrays[f"hard_w_{t}"] = data.hard_w[t].astype(np.float32)
        for t, v in data.soft.items():
            arrays[f"soft_{t}"] = v.astype(np.float16)  # soft targets: half precision is plenty
        np.savez_compressed(dest / f"run_{run}.npz", **arrays)
        runs.append(run)
    part = Part(name, tuple(runs))
    log.info("bundle part %s: %s", name, ", ".join(runs) or "no run left to train")
    return part


def write_manifest(bundle: Path, parts: list[Part], table: TextTable) -> None:
    table.write(bundle)
    (bundle / "manifest.json").write_text(json.dumps({"parts": [asdict(p) for p in parts]}, indent=1),
                                          encoding="utf-8")
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    log.info("bundle %s: %d parts, %d texts, %.1f MB", bundle, len(parts), len(table.uids), size / 1e6)


# --- training a bundle (on the accelerator machine) ----------------------------------------------------------


def load_parts(bundle: Path) -> list[Part]:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return [Part(p["name"], tuple(p["runs"])) for p in manifest["parts"]]


def _texts(bundle: Path) -> tuple[list[str], list[str]]:
    with gzip.open(bundle / TEXTS, "rt", encoding="utf-8") as f:
        d = json.load(f)
    return list(d["uids"]), list(d["texts"])


def _part_config(bundle: Path, name: str, work: Path, device: str) -> Any:
    from nlp.student import StudentConfig

    cfg = StudentConfig.from_json(bundle / "parts" / name / "config.json")
    # checkpoints only at the end (an accelerator machine is lent for one run), the part's folder under WORK
    return replace(cfg, device=device, work_dir=str(work / name), save_every=10**9)


@contextmanager
def _job(out: Path, name: str, threads: int) -> Iterator[None]:
    """A worker's logging (the terminal line names the part; full detail in ``OUT/<part>.log``) and threads."""
    import torch

    torch.set_num_threads(threads)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    term = logging.StreamHandler(sys.stdout)
    term.setFormatter(logging.Formatter(f"%(asctime)s {name}: %(message)s", "%H:%M:%S"))
    fh = logging.FileHandler(out / f"{name}.log", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    old = list(root.handlers)
    for h in old:
        root.removeHandler(h)
    root.addHandler(term)
    root.addHandler(fh)
    try:
        yield
    except Exception:
        log.exception("%s failed", name)
        raise
    finally:
        for h in (term, fh):
            root.removeHandler(h)
            h.close()
        for h in old:
            root.addHandler(h)


def train_mlm(bundle: Path, name: str, out: Path, work: Path, device: str, threads: int = 2) -> dict[str, Any]:
    """The part's masked-LM stage (or the encoder it brought) in ``work/<part>``; returns its statistics."""
    with _job(out, name, threads):
        return _train_mlm(bundle, name, work, device)


def _train_mlm(bundle: Path, name: str, work: Path, device: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from nlp.inference import encode
    from nlp.pretrain import pretrain
    from nlp.student import mlm_target, pretrain_config

    cfg = _part_config(bundle, name, work, device)
    src = bundle / "parts" / name
    mlm = Path(cfg.work_dir) / "mlm"
    (mlm / "encoder").mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "encoder", mlm / "encoder", dirs_exist_ok=True)
    if (src / "mlm_done.json").exists():
        shutil.copy2(src / "mlm_done.json", mlm / "done.json")
        return dict(json.loads((mlm / "done.json").read_text(encoding="utf-8")))
    if not (mlm / "sequences.json").exists():
        _, texts = _texts(bundle)
        tok = AutoTokenizer.from_pretrained(str(mlm / "encoder"), local_files_only=True)
        rows = np.load(src / "mlm_rows.npy")
        seqs = [s for s in encode(tok, [texts[i] for i in rows], cfg.max_length) if len(s) > 4]
        (mlm / "sequences.json").write_text(json.dumps(seqs), encoding="utf-8")
        log.info("%d pretraining sequences", len(seqs))
    stats = pretrain(mlm, [], pretrain_config(cfg), cfg.mlm_max_minutes, cfg.save_every, stop_at=mlm_target(cfg),
                     device=cfg.device)
    stats["device"] = cfg.device
    if stats["step"] < mlm_target(cfg):
        raise TimeoutError(f"{name}: pretraining stopped at step {stats['step']} of {mlm_target(cfg)} "
                           "(mlm_max_minutes)")
    (mlm / "done.json").write_text(json.dumps(stats), encoding="utf-8")
    return stats


def train_run(bundle: Path, name: str, run: str, out: Path, work: Path, device: str,
              threads: int = 2) -> dict[str, Any]:
    """Fine-tune the part's ``run`` from its pretrained encoder; saves ``run_<run>/model`` (float16) and
    ``run_<run>/train_stats.json`` under the part's folder; returns the statistics."""
    with _job(out, f"{name}_{run}", threads):
        return _train_run(bundle, name, run, work, device)


def _train_run(bundle: Path, name: str, run: str, work_root: Path, device: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from nlp.data import IGNORE
    from nlp.inference import encode
    from nlp.student import RunData, finetune

    cfg = _part_config(bundle, name, work_root, device)
    src = bundle / "parts" / name
    uids, texts = _texts(bundle)
    encoder = Path(cfg.work_dir) / "mlm" / "encoder"
    tok = AutoTokenizer.from_pretrained(str(encoder), local_files_only=True)
    z = dict(np.load(src / f"run_{run}.npz"))
    rows = z["rows"]
    tasks = [k[len("hard_"):] for k in z if k.startswith("hard_") and not k.startswith("hard_w_")]
    data = RunData(
        uids=[uids[i] for i in rows],
        seqs=encode(tok, [texts[i] for i in rows], cfg.max_length),
        hard={t: z[f"hard_{t}"].astype(np.int64) for t in tasks},
        hard_w={t: z[f"hard_w_{t}"].astype(np.float32) for t in tasks},
        soft={k[len("soft_"):]: v.astype(np.float32) for k, v in z.items() if k.startswith("soft_")},
        human=[int(i) for i in z["human"]],
    )
    task_labels = json.loads((src / "task_labels.json").read_text(encoding="utf-8"))
    work = Path(cfg.work_dir) / f"run_{run}"
    t0 = time.time()
    model, stats = finetune(cfg, data, encoder, task_labels, work)
    if stats["time_limited"]:
        raise TimeoutError(f"{name}/{run}: fine-tuning stopped at step {stats['steps']} of {stats['of']}")
    stats["texts"] = len(data.uids)
    stats["human_rows"] = len(data.human)
    stats["hard_labels"] = {t: int((v != IGNORE).sum()) for t, v in data.hard.items()}
    stats["seconds"] = round(time.time() - t0, 1)
    model.half().save_pretrained(str(work / "model"))
    (work / "train_stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    (work / "ckpt.pt").unlink(missing_ok=True)
    return stats


def pack(out: Path, work: Path, name: str, run: str, with_mlm: bool) -> Path:
    """``OUT/<part>_<run>.tar``: the run's model and statistics (and the masked-LM record)."""
    tar_path = out / f"{name}_{run}.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(work / name / f"run_{run}" / "model", arcname=f"{name}/run_{run}/model")
        tar.add(work / name / f"run_{run}" / "train_stats.json", arcname=f"{name}/run_{run}/train_stats.json")
        if with_mlm:
            tar.add(work / name / "mlm" / "done.json", arcname=f"{name}/mlm/done.json")
    return tar_path


def train_bundle(bundle: Path, out: Path, device: str, jobs: int, threads: int,
                 work: Path | None = None) -> dict[str, Any]:
    """Every part's masked-LM stage, then its runs, in ``jobs`` parallel processes, the parts' folders under
    ``work`` (default ``OUT/work``); one tar per finished run and the logs in ``out``. A part that fails is
    reported (with its error) and does not stop the others."""
    import multiprocessing as mp
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed

    from nlp.student import resolve_device

    device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work" if work is None else work
    parts = load_parts(bundle)
    report: dict[str, Any] = {"device": device, "parts": {}}
    t0 = time.time()
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
        mlm_jobs: dict[Future[Any], Part] = {ex.submit(train_mlm, bundle, p.name, out, work, device, threads): p
                                             for p in parts}
        run_jobs: dict[Future[Any], tuple[Part, str]] = {}
        for f in as_completed(mlm_jobs):
            p = mlm_jobs[f]
            try:
                report["parts"][p.name] = {"mlm": f.result()}
            except Exception as e:  # reported below; the other parts go on
                log.error("%s: masked-LM stage failed: %r", p.name, e)
                report["parts"][p.name] = {"error": repr(e)}
                continue
            log.info("%s: masked-LM stage done at %.0f s", p.name, time.time() - t0)
            for run in p.runs:
                run_jobs[ex.submit(train_run, bundle, p.name, run, out, work, device, threads)] = (p, run)
        for f in as_completed(run_jobs):
            p, run = run_jobs[f]
            try:
                stats = f.result()
            except Exception as e:
                log.error("%s/%s: fine-tuning failed: %r", p.name, run, e)
                report["parts"][p.name][run] = {"error": repr(e)}
                continue
            report["parts"][p.name][run] = {k: stats[k] for k in ("steps", "of", "seconds", "loss_first", "loss_last")}
            pack(out, work, p.name, run, with_mlm=run == p.runs[0])
            log.info("%s/%s: fine-tuned (%d steps) at %.0f s", p.name, run, stats["steps"], time.time() - t0)
    report["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


# --- bringing the results back ------------------------------------------------------------------------------


def unpack(results: Path, root: Path) -> list[str]:
    """Extract every ``<part>_<run>.tar`` of ``results`` into ``root`` (the parts' work folders); returns the
    extracted runs. Refuses members outside a part's folder."""
    from nlp.student import RUNS

    done = []
    for tar_path in sorted(results.glob("*.tar")):
        if tar_path.stem.rpartition("_")[2] not in RUNS:  # logs.tar and the like
            continue
        with tarfile.open(tar_path) as tar:
            for m in tar.getmembers():
                if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute() or ".." in Path(m.name).parts:
                    raise ValueError(f"{tar_path}: unexpected member {m.name!r}")
            tar.extractall(root, filter="data")
        done.append(tar_path.stem)
        log.info("unpacked %s into %s", tar_path.name, root)
    if not done:
        raise FileNotFoundError(f"no <part>_<run>.tar in {results}")
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.student_bundle", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="masked-LM pretraining and fine-tuning of every part of a bundle")
    tr.add_argument("bundle", type=Path)
    tr.add_argument("out", type=Path)
    tr.add_argument("--device", default="auto", help="cuda, cpu or auto (default)")
    tr.add_argument("--jobs", type=int, default=6, help="parallel processes (default 6)")
    tr.add_argument("--threads", type=int, default=2, help="torch CPU threads per process (default 2)")
    tr.add_argument("--work", type=Path, help="the parts' work folders (default OUT/work)")
    up = sub.add_parser("unpack", help="extract the runs trained elsewhere into the parts' work folders")
    up.add_argument("results", type=Path)
    up.add_argument("root", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    if args.cmd == "train":
        report = train_bundle(args.bundle, args.out, args.device, args.jobs, args.threads, args.work)
        failed = [n for n, p in report["parts"].items() if "error" in p or any("error" in v for v in p.values()
                                                                              if isinstance(v, dict))]
        print(json.dumps(report, indent=1))
        return 1 if failed else 0
    unpack(args.results, args.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
