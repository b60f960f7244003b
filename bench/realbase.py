"""Issue 31's real-base check into BENCHMARKS.md: what curriculum CPT with anchoring, and then SFT, do to
Hebrew and to English on two real bases (Gemma 3 270M, SmolLM2-135M-Instruct).

    hebrew-lm run bench/configs/realbase.yaml      # imports, CPT runs, SFT, evaluation (about 2 h on 2 cores)
    python bench/realbase.py --write                # tables (and the HeQ chat answers of the SFT model)
    python bench/decoder.py --only engine --run-dir runs/realbase --base runs/realbase/gemma --write
                                                    # our engine against the stock Trainer on Gemma 3 270M

Bits per byte (the `eval_bpb` stage: lm-eval's rolling log-likelihood over the first 20,000 bytes of
held-out Hebrew and English) compares models across tokenizers. Its noise is measured twice: the
sampling of the documents (a paired bootstrap over the documents of a difference) and the seed (the
anchored Gemma run again with another data order). A difference is called beyond noise only when it
exceeds both two bootstrap standard errors and the two seeds' spread.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from benchmarks_md import write_block

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "realbase"
CONFIG = "bench/configs/realbase.yaml"
CPT_RUNS = {  # run -> (base, what differs from the anchored recipe)
    "gemma_cpt": ("gemma", "curriculum, anchor_share 0.25"), "gemma_cpt_seed1": ("gemma", "the same, seed 1"),
    "gemma_unanchored": ("gemma", "no English"), "gemma_reversed": ("gemma", "phases reversed"),
    "gemma_trim_cpt": ("gemma_trim", "the anchored recipe, vocabulary trimmed to 46,960"),
    "smollm2_cpt": ("smollm2_extend", "curriculum, anchor_share 0.25, +1,000 Hebrew tokens"),
    "smollm2_plain_vocab": ("smollm2", "the same, its own vocabulary"),
    "smollm2_unanchored": ("smollm2_extend", "no English"), "smollm2_reversed": ("smollm2_extend", "phases reversed")}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def per_document(model: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(nats, bytes) of every scored document of a bits-per-byte task, from the eval's per-sample log."""
    nats, nbytes = [], []
    for line in (RUN / "eval_bpb" / "samples" / model / f"{task}.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        resp = row["resps"]
        while isinstance(resp, list):
            resp = resp[0]
        nats.append(-float(resp))
        nbytes.append(len(row["doc"]["text"].encode("utf-8")))
    return np.asarray(nats), np.asarray(nbytes, dtype=np.float64)


def bpb(nats: np.ndarray, nbytes: np.ndarray) -> float:
    return float(nats.sum() / nbytes.sum() / math.log(2))


def bootstrap_difference(a: str, b: str, task: str, draws: int = 2000) -> float:
    """The standard error of bpb(a) - bpb(b) over resamplings of the same documents (paired)."""
    (na, ba), (nb, bb) = per_document(a, task), per_document(b, task)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(na), size=(draws, len(na)))
    diffs = (na[picks].sum(1) / ba[picks].sum(1) - nb[picks].sum(1) / bb[picks].sum(1)) / math.log(2)
    return float(diffs.std(ddof=1))


def trained_tokens(run: str) -> tuple[int, float]:
    """A CPT run's tokens trained on (Hebrew and anchor, from its phase table) and the anchor's share of them:
    anchor_share counts pieces, and an anchor of long paragraphs against Hebrew sentences weighs more."""
    phases = read_json(RUN / run / "stats.json")["phases"]
    hebrew, anchor = sum(p["hebrew_tokens"] for p in phases), sum(p["anchor_tokens"] for p in phases)
    return hebrew + anchor, anchor / max(hebrew + anchor, 1)


def bits_per_byte_table(results: dict) -> tuple[list[str], dict[str, dict[str, float]]]:
    models = results["models"]
    value = {m: {t: models[m]["tasks"][t]["value"] for t in ("he_bpb", "en_bpb")} for m in models}
    seed_spread = {t: abs(value["gemma_cpt"][t] - value["gemma_cpt_seed1"][t]) for t in ("he_bpb", "en_bpb")}
    lines = ["| model | from | what | tokens trained (English share) | Hebrew bpb | Δ Hebrew | English bpb | "
             "Δ English (relative) | beyond noise |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for base in ("gemma", "smollm2"):
        lines.append(f"| {base} (as imported) | | | | {value[base]['he_bpb']:.4f} | | {value[base]['en_bpb']:.4f} | | |")
    if "gemma_trim" in value:
        lines.append(f"| gemma_trim | gemma | vocabulary trimmed to the corpora's tokens, no training | | "
                     f"{value['gemma_trim']['he_bpb']:.4f} | {value['gemma_trim']['he_bpb'] - value['gemma']['he_bpb']:+.4f} | "
                     f"{value['gemma_trim']['en_bpb']:.4f} | {value['gemma_trim']['en_bpb'] - value['gemma']['en_bpb']:+.4f} | |")
    if "smollm2_extend" in value:
        lines.append(f"| smollm2_extend | smollm2 | +1,000 Hebrew tokens, mean-initialized, no training | | "
                     f"{value['smollm2_extend']['he_bpb']:.4f} | | {value['smollm2_extend']['en_bpb']:.4f} | | |")
    for run, (base, what) in CPT_RUNS.items():
        if run not in value:
            continue
        origin = "smollm2" if base.startswith("smollm2") else "gemma"  # against the base as imported
        dhe = value[run]["he_bpb"] - value[origin]["he_bpb"]
        den = value[run]["en_bpb"] - value[origin]["en_bpb"]
        noise = {t: max(2 * bootstrap_difference(run, origin, t), seed_spread[t]) for t in ("he_bpb", "en_bpb")}
        beyond = [name for name, d, t in (("Hebrew", dhe, "he_bpb"), ("English", den, "en_bpb")) if abs(d) > noise[t]]
        tokens, english = trained_tokens(run)
        lines.append(f"| {run} | {origin} | {what} | {tokens:,} ({100 * english:.0f}%) | {value[run]['he_bpb']:.4f} | "
                     f"{dhe:+.4f} | {value[run]['en_bpb']:.4f} "
                     f"| {den:+.4f} ({100 * den / value[origin]['en_bpb']:+.1f}%) | {', '.join(beyond) or 'neither'} |")
    if "gemma_sft" in value:
        dhe = value["gemma_sft"]["he_bpb"] - value["gemma"]["he_bpb"]
        den = value["gemma_sft"]["en_bpb"] - value["gemma"]["en_bpb"]
        lines.append(f"| gemma_sft | gemma | gemma_cpt, then chat SFT | | {value['gemma_sft']['he_bpb']:.4f} | {dhe:+.4f} | "
                     f"{value['gemma_sft']['en_bpb']:.4f} | {den:+.4f} ({100 * den / value['gemma']['en_bpb']:+.1f}%) | |")
    return lines, {"seed_spread": seed_spread, **value}


def comparisons(value: dict) -> list[str]:
    """The questions the issue asks, answered from the table with their noise."""
    out = []
    for a, b, question in (("gemma_unanchored", "gemma_cpt", "Anchoring (unanchored - anchored) on Gemma (English)"),
                           ("smollm2_unanchored", "smollm2_cpt", "Anchoring (unanchored - anchored) on SmolLM2 (English)"),
                           ("gemma_unanchored", "gemma_cpt", "Anchoring (unanchored - anchored) on Gemma (Hebrew)"),
                           ("gemma_reversed", "gemma_cpt", "Order (reversed - ordered) on Gemma (Hebrew)"),
                           ("smollm2_reversed", "smollm2_cpt", "Order (reversed - ordered) on SmolLM2 (Hebrew)"),
                           ("smollm2_plain_vocab", "smollm2_cpt", "Extension (own vocabulary - extended) on SmolLM2 (Hebrew)")):
        if a not in value or b not in value:
            continue
        task = "en_bpb" if "English" in question else "he_bpb"
        d = value[a][task] - value[b][task]
        se = bootstrap_difference(a, b, task)
        spread = value["seed_spread"][task]
        verdict = "beyond noise" if abs(d) > max(2 * se, spread) else "within noise"
        out.append(f"- {question}: {d:+.4f} bits per byte (documents' bootstrap stderr {se:.4f}; the anchored Gemma "
                   f"run's two seeds differ by {spread:.4f}): {verdict}.")
    return out


def heq_chat(limit: int) -> dict:
    """The SFT model's zero-shot answers to the first `limit` HeQ test questions, the ones eval_heq scored
    (greedy, 48 tokens), with the prompt it was trained on; cached in RUN/heq_chat.json for this model file."""
    folder = RUN / "gemma_sft" / "model"
    weights = (folder / "model.safetensors").stat()
    model_id = [weights.st_size, weights.st_mtime_ns]
    cache = RUN / "heq_chat.json"
    if cache.is_file() and (cached := read_json(cache)).get("model") == model_id and len(cached["items"]) == limit:
        return cached
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hebrew_lm.evaluate.metrics import qa_scores
    from hebrew_lm.sft.data import heq_request

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the GPU-size check answers 400 questions
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval().to(device)
    rows = [json.loads(x) for x in (RUN / "eval_heq" / "tasks" / "heq.test.jsonl").read_text(encoding="utf-8").splitlines()]
    items, started = [], time.perf_counter()
    for row in rows[:limit]:
        question = row["question"]
        messages = [{"role": "user", "content": heq_request(row["context"], question)}]
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True).to(device)
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=48, do_sample=False)
        answer = tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        items.append({"question": question, "answers": row["answers"], "answer": answer, **qa_scores(answer, row["answers"])})
    result = {"model": model_id, "items": items, "seconds": time.perf_counter() - started}
    cache.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return result


def mean_stderr(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


def task_table(tasks: dict) -> list[str]:
    """Few-shot HeQ, HebNLI and SMCD per model (mean ± stderr)."""
    lines = ["| model | HeQ F1 | HeQ TLNLS | HebNLI acc | SMCD acc | items per task |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in tasks["models"].items():
        t = row["tasks"]

        def cell(task: str) -> str:
            return f"{100 * t[task]['value']:.1f} ± {100 * (t[task]['stderr'] or float('nan')):.1f}" if task in t else "–"

        tlnls = mean_stderr([s["tlnls"] for s in heq_items(RUN / "eval_tasks", name)]) if "heq" in t else None
        shots = ", ".join(f"{k} {t[k]['num_fewshot']}-shot" for k in ("heq", "hebnli", "smcd") if k in t)
        lines.append(f"| {name} ({shots}) | {cell('heq')} | {f'{100 * tlnls[0]:.1f} ± {100 * tlnls[1]:.1f}' if tlnls else '–'} | "
                     f"{cell('hebnli')} | {cell('smcd')} | {t.get('heq', {}).get('n', '–')} |")
    return lines


def heq_table(heq: dict, chat: dict) -> list[str]:
    """HeQ on the same questions: each base few-shot, the SFT model zero-shot in chat (F1, exact match, TLNLS,
    mean ± stderr x 100), and the SFT model's paired difference from each base, per question."""
    def cell(values: list[float]) -> str:
        m, se = mean_stderr(values)
        return f"{100 * m:.1f} ± {100 * se:.1f}"

    chat_items = chat["items"]
    lines = ["| model | F1 | exact match | TLNLS | SFT's F1 minus this model's, paired | beyond one stderr |",
             "|---|---:|---:|---:|---:|---|"]

    def row(name: str, items: list[dict], paired: str) -> str:
        return (f"| {name} | {cell([i['f1'] for i in items])} | {cell([i['exact_match'] for i in items])} | "
                f"{cell([i['tlnls'] for i in items])} | {paired} |")

    for name, result in heq["models"].items():
        items = heq_items(RUN / "eval_heq", name)
        assert [i["question"] for i in items] == [i["question"] for i in chat_items], "the chat model answered other questions"
        m, se = mean_stderr([c["f1"] - i["f1"] for c, i in zip(chat_items, items)])
        lines.append(row(f"{name} ({result['tasks']['heq']['num_fewshot']}-shot)", items,
                         f"{100 * m:+.1f} ± {100 * se:.1f} | {'yes' if abs(m) > se else 'no'}"))
    lines.append(row("gemma_sft (zero-shot chat, HeQ's prompt as trained)", chat_items, " | "))
    return lines


def heq_items(eval_dir: Path, name: str) -> list[dict]:
    """Each HeQ question an eval stage scored for model `name`, with its answer's F1, exact match and TLNLS."""
    from hebrew_lm.evaluate.metrics import qa_scores

    out = []
    for line in (eval_dir / "samples" / name / "heq.jsonl").read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        answer = sample["resps"]
        while isinstance(answer, list):
            answer = answer[0]
        out.append({"question": sample["doc"]["question"], **qa_scores(str(answer).strip(), sample["doc"]["answers"])})
    return out


def tokens_per_word() -> list[str]:
    """Each tokenizer's tokens per word on the Hebrew text eval_bpb scores, by the rule the extend stage
    reports (`hebrew_lm.tokenizer.extend.tokens_per_word`), and per byte."""
    from tokenizers import Tokenizer

    from hebrew_lm.tokenizer.extend import WORD, tokens_per_word as per_word

    texts = [json.loads(x)["text"] for x in (RUN / "eval_bpb" / "tasks" / "he_bpb.test.jsonl").read_text(encoding="utf-8").splitlines()]
    words = sum(len(WORD.findall(t)) for t in texts)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    lines = ["| tokenizer | vocabulary | tokens per Hebrew word | tokens per byte |", "|---|---:|---:|---:|"]
    for name in ("gemma", "gemma_trim", "smollm2", "smollm2_extend"):
        tok = Tokenizer.from_file(str(RUN / name / "tokenizer.json"))
        ratio = per_word(tok, texts)
        lines.append(f"| {name} | {tok.get_vocab_size():,} | {ratio:.2f} | {ratio * words / nbytes:.3f} |")
    return lines


def costs() -> list[str]:
    """Each stage's wall time (the pipeline's timings) and, for the CPT runs, the tokens they trained on
    (their phase tables: the engine's own tokens_seen assumes every piece has the mean length) per second."""
    timings = read_json(RUN / "timings" / "timings.json") if (RUN / "timings" / "timings.json").is_file() else {}
    lines = ["| stage | wall time | tokens trained | trained tokens/s |", "|---|---:|---:|---:|"]
    for stage, entry in timings.items():
        seconds = entry.get("seconds") if isinstance(entry, dict) else entry
        if not isinstance(seconds, (int, float)):
            continue
        stats = read_json(RUN / stage / "stats.json") if (RUN / stage / "stats.json").is_file() else {}
        tokens = trained_tokens(stage)[0] if isinstance(stats.get("phases"), list) else None
        rate = f"{tokens / stats['wall_seconds']:.0f}" if tokens and stats.get("wall_seconds") else ""
        lines.append(f"| {stage} | {seconds / 60:.1f} min | {f'{tokens:,}' if tokens else ''} | {rate} |")
    return lines


def plot(value: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in ("gemma", "gemma_cpt", "gemma_cpt_seed1", "gemma_unanchored", "gemma_reversed", "gemma_sft",
                         "gemma_trim", "gemma_trim_cpt",
                         "smollm2", "smollm2_extend", "smollm2_cpt", "smollm2_plain_vocab", "smollm2_unanchored",
                         "smollm2_reversed") if m in value]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, task, title in ((axes[0], "he_bpb", "Hebrew (held out)"), (axes[1], "en_bpb", "English (held out)")):
        ax.bar(range(len(names)), [value[m][task] for m in names],
               color=["#1f77b4" if m.startswith("gemma") else "#ff7f0e" for m in names])
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("bits per byte (lower is better)")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gpu_preset(path: Path, steps: int = 150, seeds: int = 3) -> None:
    """The same check at GPU size (`bash bench/gpu.sh realbase`): every CPT run 150 steps of 64 documents of
    up to 1,024 tokens in bf16 (about 1M tokens, 50x the CPU budget), the anchored Gemma run under three
    seeds, SFT 200 steps, the few-shot sets on 400 items, into runs/realbase-gpu."""
    import yaml

    preset = yaml.safe_load((ROOT / CONFIG).read_text(encoding="utf-8"))
    preset["run_dir"] = "runs/realbase-gpu"
    text = json.dumps(preset).replace("runs/realbase/", "runs/realbase-gpu/")
    preset = json.loads(text)
    for name, section in preset.items():
        if isinstance(section, dict) and section.get("stage") in ("cpt", "sft"):
            sft = section["stage"] == "sft"
            section.update({"max_steps": 200 if sft else steps, "global_batch_size": 32 if sft else 64,
                            "micro_batch_size": 8 if sft else 16, "max_seq_len": 1024, "warmup_steps": 10,
                            "eval_every": 200 if sft else steps, "checkpoint_every": 200 if sft else steps,
                            "eval_batches": 8, "precision": "bf16", "log_every": 10})
        if isinstance(section, dict) and section.get("stage") == "eval":
            section.update({"device": "cuda", "batch_size": 16, **({"limit": 400} if "limit" in section else {})})
    for seed in range(2, seeds):  # more seeds of the anchored Gemma run: the spread the differences are read against
        preset[f"gemma_cpt_seed{seed}"] = {**preset["gemma_cpt_seed1"], "seed": seed}
        preset["stages"].insert(preset["stages"].index("eval_bpb"), f"gemma_cpt_seed{seed}")
        preset["eval_bpb"]["models"].append(f"runs/realbase-gpu/gemma_cpt_seed{seed}/model")
        preset["eval_bpb"]["model_names"].append(f"gemma_cpt_seed{seed}")
    path.write_text(yaml.safe_dump(preset, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main() -> None:
    global RUN
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the tables into BENCHMARKS.md")
    parser.add_argument("--run-dir", default=str(RUN), help="the run to read (runs/realbase-gpu: the GPU-size check)")
    parser.add_argument("--gpu-preset", metavar="FILE", help="write the GPU-size preset of the same check to FILE")
    args = parser.parse_args()
    if args.gpu_preset:
        gpu_preset(Path(args.gpu_preset))
        return
    RUN = Path(args.run_dir).resolve()
    machine = f"{__import__('os').cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}"
    table, value = bits_per_byte_table(read_json(RUN / "eval_bpb" / "results.json"))
    tasks = read_json(RUN / "eval_tasks" / "results.json") if (RUN / "eval_tasks" / "results.json").is_file() else None
    heq = read_json(RUN / "eval_heq" / "results.json") if (RUN / "eval_heq" / "results.json").is_file() else None
    chat = (heq_chat(next(iter(heq["models"].values()))["tasks"]["heq"]["n"])
            if (RUN / "gemma_sft" / "model").is_dir() and heq else None)
    plot(value, ROOT / "docs" / "img" / "realbase.png")
    parts = [f"`{' && '.join(['hebrew-lm run ' + CONFIG, 'python bench/realbase.py --write'])}` ({machine}).", "",
             "Bits per byte on held-out text (the first 20,000 bytes of each validation split; lower is better). "
             "Δ is against the base as imported; *beyond noise* means larger than both two standard errors of a "
             "paired bootstrap over the documents and the spread of the anchored Gemma run's two seeds.", "", *table,
             "", *comparisons(value), "", "![bits per byte of every model](docs/img/realbase.png)", ""]
    if tasks:
        parts += ["Few-shot tasks in the leaderboard's formats (the first 30 items of each test set: the budget), "
                  "mean ± stderr x 100:", "", *task_table(tasks), ""]
    if heq and chat:
        parts += [f"HeQ on its first {len(chat['items'])} test questions: the bases few-shot, the SFT model zero-shot "
                  "in chat with the prompt it was trained on (greedy, 48 tokens, scored whole), mean ± stderr x 100:",
                  "", *heq_table(heq, chat), ""]
    parts += ["Tokenizers on the same Hebrew:", "", *tokens_per_word(), "", "What each part cost:", "", *costs()]
    print("\n".join(parts))
    if args.write:
        write_block("realbase.py", "Gemma 3 270M and SmolLM2-135M on ../shared/data" if RUN.name == "realbase"
                    else RUN.name, "\n".join(parts),
                    "## The decoder recipe on real bases (`bench/realbase.py`)",
                    "Issue 31's check: curriculum CPT with anchoring, then SFT, on two real bases, measured in bits per "
                    "byte and on HeQ, HebNLI and SMCD; docs/cpt.md says what it shows.")


if __name__ == "__main__":
    main()
