"""Benchmark: our tokenizer training against sentencepiece BPE, side by side, at the same vocabulary size.

    .venv/bin/python bench/tokenizer.py --size-mb 100            # writes its table into BENCHMARKS.md
    .venv/bin/python bench/tokenizer.py --size-mb 1000

Sample: SIZE MB of modern Hebrew documents built from ../shared/data/hebrew_raw_text by drawing 15-40
random sentences per document (so documents differ and word counts cannot shortcut exact repeats),
normalized as the corpus stage does. The IAHLT UD dev/test files (Wikipedia and Knesset) are left
out of the sample: their text is the held-out text and their multiword tokens the gold morphemes.

Each training runs in its own subprocess; wall time and peak RSS are measured from outside. Ours is
`hebrew_lm.tokenizer.train.train_byte_level_bpe`, fed batches of documents from a Python generator,
exactly as the stage does; sentencepiece BPE reads the same text from a file with its own C++
reader (its fastest path) with the same options as the audit's baseline. A second run of ours with
a 300-token vocabulary isolates reading, pre-tokenization and word counting from the merges.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hebrew_raw_text"
HELD_OUT = sorted((DATA / "iahlt_ud").glob("*.conllu"))


def make_sample(path: Path, size_mb: float, seed: int = 0) -> int:
    from hebrew_lm.text.normalize import Normalizer

    normalize = Normalizer()
    pool = []
    for f in sorted(DATA.glob("*/*.txt")):
        if f.parent.name == "iahlt_ud":
            continue
        pool.extend(normalize(line) for line in f.read_text(encoding="utf-8").split("\n") if len(line.split()) >= 5)
    rng = random.Random(seed)
    total = 0
    with open(path, "w", encoding="utf-8") as out:
        while total < size_mb * 1e6:
            doc = " ".join(rng.sample(pool, rng.randint(15, 40)))
            out.write(doc + "\n")
            total += len(doc.encode("utf-8")) + 1
    return total


def held_out_texts() -> list[str]:
    texts = []
    for f in HELD_OUT:
        texts.extend(line.split("=", 1)[1].strip() for line in f.read_text(encoding="utf-8").split("\n")
                     if line.startswith("# text ="))
    return texts


# --------------------------------------------------------------------------------------------------
# The trainings, each in a subprocess of this script


def train_ours(sample: Path, vocab: int, out: Path, char_aligned: bool = True) -> None:
    from hebrew_lm.tokenizer.bpe import train_byte_level_bpe

    def batches():
        batch = []
        with open(sample, encoding="utf-8") as f:
            for line in f:
                batch.append(line.rstrip("\n"))
                if len(batch) == 1000:
                    yield batch
                    batch = []
        if batch:
            yield batch

    train_byte_level_bpe(batches(), vocab, 2, char_aligned=char_aligned).save(str(out))


def train_spm(sample: Path, vocab: int, out: Path) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=str(sample), model_prefix=str(out.with_suffix("")), vocab_size=vocab, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        max_sentence_length=1 << 16, num_threads=os.cpu_count() or 1, hard_vocab_limit=False, minloglevel=2,
    )


def timed(args: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args])
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{args} failed with status {status}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def encode_throughput(candidate, texts: list[str], repeat: int = 3) -> float:
    """MB/s of batched encoding (both libraries' batch APIs use every core)."""
    payload = texts * repeat
    size = sum(len(t.encode("utf-8")) for t in payload) / 1e6
    start = time.perf_counter()
    if hasattr(candidate, "sp"):
        candidate.sp.encode(payload, num_threads=os.cpu_count() or 1)
    else:
        candidate.tok.encode_batch(payload, add_special_tokens=False)
    return size / (time.perf_counter() - start)


def write_benchmarks_md(table: str, size_mb: float) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from benchmarks_md import write_block

    write_block("tokenizer.py", f"{size_mb:g} MB", table, "## Tokenizer training (`bench/tokenizer.py`)",
                "Our byte-level BPE training (the stage's own function) against sentencepiece BPE at the same "
                "vocabulary size. Ratios are ours / sentencepiece.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--vocab", type=int, default=52000)
    parser.add_argument("--work", default=str(REPO / "bench" / "_work" / "tokenizer"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--_run", choices=["ours", "plain", "spm"], help=argparse.SUPPRESS)
    parser.add_argument("--_vocab", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    sample = work / f"sample-{args.size_mb:g}MB.txt"
    if args._run in ("ours", "plain"):
        return train_ours(sample, args._vocab, Path(args._out), char_aligned=args._run == "ours")
    if args._run == "spm":
        return train_spm(sample, args._vocab, Path(args._out))

    from hebrew_lm.tokenizer.audit import load_candidate, measure
    from hebrew_lm.tokenizer.morphemes import read_conllu_words

    work.mkdir(parents=True, exist_ok=True)
    size = make_sample(sample, args.size_mb)
    print(f"sample: {size / 1e6:.1f} MB", flush=True)
    common = ["--size-mb", str(args.size_mb), "--work", str(work)]
    ours_json, plain_json, spm_model = work / "ours.json", work / "plain.json", work / "spm.model"
    t_ours, rss_ours = timed(common + ["--_run", "ours", "--_vocab", str(args.vocab), "--_out", str(ours_json)])
    t_count, _ = timed(common + ["--_run", "ours", "--_vocab", "300", "--_out", str(work / "count-only.json")])
    t_plain, rss_plain = timed(common + ["--_run", "plain", "--_vocab", str(args.vocab), "--_out", str(plain_json)])
    t_spm, rss_spm = timed(common + ["--_run", "spm", "--_vocab", str(args.vocab), "--_out", str(spm_model)])
    print(f"ours {t_ours:.1f}s {rss_ours:.0f}MB (counting {t_count:.1f}s); plain {t_plain:.1f}s; "
          f"spm {t_spm:.1f}s {rss_spm:.0f}MB", flush=True)

    from hebrew_lm.tokenizer.bpe import bytes_to_unicode

    to_byte = {ch: b for b, ch in bytes_to_unicode().items()}

    def fragments(path: Path) -> int:
        """Vocabulary entries that begin in the middle of a character (a UTF-8 continuation byte)."""
        vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
        return sum(1 for t in vocab if len(t) > 1 and t[0] in to_byte and 0x80 <= to_byte[t[0]] <= 0xBF)

    texts = held_out_texts()
    morph = [w for f in HELD_OUT for w in read_conllu_words(f)]
    cands = [load_candidate(str(ours_json), name="ours"), load_candidate(str(plain_json), name="plain"),
             load_candidate(str(spm_model), name="sentencepiece BPE")]
    m_ours, m_plain, m_spm = (measure(c, texts, morph) for c in cands)
    e_ours, e_plain, e_spm = (encode_throughput(c, texts) for c in cands)

    def row(label, key, fmt, ratio=True):
        a, b, c = m_ours[key], m_plain[key], m_spm[key]
        return (label, fmt.format(a), fmt.format(b), fmt.format(c), f"{a / c:.3f}" if ratio and c else "")

    rows = [
        ("training wall time (s)", f"{t_ours:.1f}", f"{t_plain:.1f}", f"{t_spm:.1f}", f"**{t_ours / t_spm:.2f}**"),
        ("  of which reading + pre-tokenizing + counting words (s)", f"{t_count:.1f}", "", "", ""),
        ("training peak RSS (MB)", f"{rss_ours:.0f}", f"{rss_plain:.0f}", f"{rss_spm:.0f}", f"**{rss_ours / rss_spm:.2f}**"),
        ("vocabulary entries that start mid-character", f"{fragments(ours_json):,}", f"{fragments(plain_json):,}", "", ""),
        ("batched encode (MB/s)", f"{e_ours:.2f}", f"{e_plain:.2f}", f"{e_spm:.2f}", f"{e_ours / e_spm:.2f}"),
        row("tokens per word (lower is better)", "fertility", "{:.3f}"),
        row("words split into 2+ tokens", "split_word_share", "{:.1%}", ratio=False),
        row("byte-fallback / unknown / part-character tokens", "fallback_rate", "{:.2%}", ratio=False),
        row("morpheme boundary recall", "morph_recall_all", "{:.3f}"),
        row("morpheme boundary precision", "morph_precision_all", "{:.3f}"),
        row("morpheme boundary F1", "morph_f1_all", "{:.3f}"),
        row("recall on words with prefix letters", "morph_recall_prefixed", "{:.3f}"),
    ]
    table = (
        f"`python bench/tokenizer.py --size-mb {args.size_mb:g} --vocab {args.vocab}` on {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores: {size / 1e6:.0f} MB sample; held-out {len(texts):,} sentences, "
        f"{m_ours['morph_words']:,} gold-segmented words.\n\n"
        "| | hebrew-lm (char-aligned byte-level BPE) | plain byte-level BPE (HF tokenizers, the paper's recipe) "
        "| sentencepiece BPE | ratio hebrew-lm / sentencepiece |\n|---|---|---|---|---|\n"
        + "\n".join("| " + " | ".join(r) + " |" for r in rows)
    )
    print("\n" + table)
    (work / f"result-{args.size_mb:g}MB.json").write_text(json.dumps({"ours": m_ours, "plain": m_plain, "spm": m_spm}, indent=2))
    if not args.no_write:
        write_benchmarks_md(table, args.size_mb)


if __name__ == "__main__":
    main()
