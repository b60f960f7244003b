"""Each stage's report section, read from its finished folder (the registry names the function for each
stage), and the environment's."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from importlib import metadata
from pathlib import Path

from hebrew_lm.report.page import Section, number, read_json, stage_section, task_comparison
from hebrew_lm.runs import is_finished

log = logging.getLogger("hebrew_lm")
PACKAGES = ("hebrew-lm", "torch", "transformers", "tokenizers", "datasets", "accelerate", "seqeval",
            "huggingface_hub", "datasketch", "sentencepiece", "numpy")


@stage_section("corpus", "Corpus", "corpus")
def corpus_section(folder: Path, stats: dict, s: Section) -> None:
    kept = stats["kept"]
    splits = stats["splits"]
    s.paragraphs.append(
        f"{stats['documents_in']:,} documents read ({stats['bytes_in'] / 1e6:,.1f} MB); {kept['documents']:,} kept "
        f"(train {splits['train']['documents']:,} documents / {splits['train']['bytes'] / 1e6:,.1f} MB, validation "
        f"{splits['validation']['documents']:,}). Exact duplicates {stats['duplicates']['exact']:,}, near duplicates "
        f"{stats['duplicates']['near']:,}.")
    s.summary.append(f"Corpus: {kept['documents']:,} of {stats['documents_in']:,} documents kept, "
                     f"{splits['train']['bytes'] / 1e6:,.1f} MB of training text.")
    dropped = sorted(stats["dropped"].items(), key=lambda kv: -kv[1]["documents"])
    s.tables.append(("Dropped documents by reason (every one is in rejects.jsonl.gz)", ["reason", "documents", "MB"],
                     [[k, number(v["documents"]), f"{v['bytes_in'] / 1e6:.2f}"] for k, v in dropped] or [["(none)", "0", "0"]]))
    s.tables.append(("By source", ["source", "documents in", "kept", "dropped"],
                     [[k, number(v["documents_in"]), number(v["kept"]), ", ".join(f"{r} {n:,}" for r, n in v["dropped"].items()) or "–"]
                      for k, v in stats["sources"].items()]))
    if (folder / "stats.png").is_file():
        s.images.append(("corpus statistics", folder / "stats.png"))


@stage_section("tokenizer", "Tokenizer", "tokenizer")
def tokenizer_section(folder: Path, stats: dict, s: Section) -> None:
    s.paragraphs.append(f"Byte-level BPE, {stats['vocab_size']:,} tokens, trained on {stats['sample_documents']:,} documents "
                        f"({stats['sample_bytes'] / 1e6:,.1f} MB) in {stats['train_seconds']:.1f} s.")
    audit = read_json(folder / "audit" / "audit.json")
    if audit:
        s.paragraphs.append("Audit on the corpus's validation split and gold morpheme segmentations (the Hebrew "
                            "Treebank's dev and test): fewer tokens per word is better; morph F1 says how often "
                            "token boundaries fall on morpheme boundaries.")
        s.tables.append(("Tokenizer audit", ["tokenizer", "vocab", "tokens/word", "words split", "chars/token",
                                             "byte fallback", "round trip", "morph F1"],
                         [[r["tokenizer"], number(r["vocab_size"]), f"{r['fertility']:.3f}", f"{100 * r['split_word_share']:.1f}%",
                           f"{r['chars_per_token']:.2f}", f"{100 * r['fallback_rate']:.2f}%", f"{100 * r['roundtrip_share']:.1f}%",
                           f"{r['morph_f1_all']:.3f}" if r.get("morph_f1_all") is not None else "–"] for r in audit]))
        ours, others = audit[0], audit[1:]
        s.summary.append(f"Tokenizer: {stats['vocab_size']:,} tokens, {ours['fertility']:.2f} tokens per word"
                         + "".join(f"; {r['tokenizer']} {r['fertility']:.2f}" for r in others if "English" in r["tokenizer"]) + ".")
        if (folder / "audit" / "audit.png").is_file():
            s.images.append(("tokenizer audit", folder / "audit" / "audit.png"))


@stage_section("pretraining", "Pretraining", "pretrain")
def pretrain_section(folder: Path, stats: dict, s: Section) -> None:
    import math

    config = read_json(folder / "model" / "config.json") or {}
    val = stats.get("final_val_loss")
    s.paragraphs.append(
        f"RoBERTa encoder, {stats['parameters']:,} parameters ({config.get('num_hidden_layers', '?')} layers, hidden "
        f"{config.get('hidden_size', '?')}), {stats['steps']:,} steps, {stats['tokens_seen']:,} tokens seen in "
        f"{stats['wall_seconds'] / 60:.1f} min on {stats['processes']} process(es); final training loss "
        f"{stats['final_loss']:.3f}" + (f", validation loss {val:.3f} (perplexity {math.exp(min(val, 50)):,.1f})" if val else "")
        + f"; {stats['spikes']} loss spikes recovered. The exported model is `{folder / 'model'}`.")
    s.summary.append(f"Pretraining: {stats['parameters'] / 1e6:,.1f}M parameters, {stats['tokens_seen'] / 1e6:,.1f}M tokens"
                     + (f", validation perplexity {math.exp(min(val, 50)):,.1f}." if val else "."))
    fill = stats.get("fill_mask") or {}
    if "top1" in fill:
        s.paragraphs.append(
            f"Fill-mask on held-out text, before any fine-tuning ({fill['masked_positions']:,} masked positions): "
            f"the model's first guess is right {100 * fill['top1']:.1f}% of the time and its top five hold the "
            f"answer {100 * fill['top5']:.1f}%, against {100 * fill['unigram_top1']:.1f}% and "
            f"{100 * fill['unigram_top5']:.1f}% for always guessing the most frequent tokens (the unigram baseline).")
        s.tables.append(("Fill-mask: model against the unigram baseline", ["", "top-1", "top-5"],
                         [["pretrained model", f"{100 * fill['top1']:.1f}%", f"{100 * fill['top5']:.1f}%"],
                          ["unigram baseline", f"{100 * fill['unigram_top1']:.1f}%", f"{100 * fill['unigram_top5']:.1f}%"]]))
        s.summary.append(f"Fill-mask top-1 {100 * fill['top1']:.1f}% against {100 * fill['unigram_top1']:.1f}% for the "
                         "unigram baseline.")
        probe = fill.get("probe")
        if probe:
            s.tables.append((f"Top guesses for “{probe['text']}”", ["guess", "probability"],
                             [[g["token"], f"{g['score']:.3f}"] for g in probe["guesses"]]))
    if (folder / "curves.png").is_file():
        s.images.append(("training loss and validation perplexity", folder / "curves.png"))


def finetune_sections(folder: Path) -> list[Section]:
    s = Section("results", "Fine-tuning results")
    e = Section("errors", "Error analysis")
    summary = s.summary
    results = read_json(folder / "results.json")
    if not is_finished(folder) or results is None:
        s.paragraphs.append(f"The finetune stage has not run ({folder}).")
        e.paragraphs.append("No fine-tuning results yet.")
        return [s, e]
    names, columns = results["task_names"], results["columns"]
    rows = []
    for model, row in results["models"].items():
        rows.append([model, *[f"{100 * row['tasks'][n]['test']['mean']:.2f} ± {100 * row['tasks'][n]['test']['std']:.2f}"
                              for n in names], f"{100 * row['average']:.2f}"])
    metrics = "; ".join(f"{c}: {results['models'][next(iter(results['models']))]['tasks'][n]['metric']}"
                        for c, n in zip(columns, names))
    s.paragraphs.append(f"Test scores x 100, mean ± std over seeds; hyperparameters chosen on dev only. {metrics}.")
    s.tables.append(("Results (the paper's layout)", ["model", *columns, "average"], rows))
    grid = results["grid"]
    s.paragraphs.append(f"Grid: learning rates {grid['learning_rates']} x batch sizes {grid['batch_sizes']}, seeds "
                        f"{grid['seeds']}, at most {grid['max_epochs']} epochs, patience {grid['patience']}.")
    if results.get("licenses"):
        s.paragraphs.append("Data terms: " + "; ".join(results["licenses"].values()) + ".")
    if (folder / "results.png").is_file():
        s.images.append(("fine-tuning results", folder / "results.png"))
    pretrained = [m for m, r in results["models"].items() if not r["random_init"]]
    baseline = [m for m, r in results["models"].items() if r["random_init"]]
    if pretrained and baseline:
        a, b = results["models"][pretrained[0]], results["models"][baseline[0]]
        diff = 100 * (a["average"] - b["average"])
        verdict = (f"Pretraining bought {diff:.2f} points" if diff >= 0.005 else
                   f"Pretraining cost {-diff:.2f} points" if diff <= -0.005 else "Pretraining and random init tie")
        summary.append(f"{verdict} on average: {pretrained[0]} {100 * a['average']:.2f} "
                       f"against {baseline[0]} {100 * b['average']:.2f} ("
                       + "; ".join(task_comparison(c, a["tasks"][n]["test"], b["tasks"][n]["test"])
                                   for c, n in zip(columns, names)) + ").")

    curves = results.get("learning_curves")
    if curves:
        tasks = list(next(iter(curves.values())))
        s.paragraphs.append("Learning curves: every model fine-tuned on fractions of each training set with the "
                            "hyperparameters chosen on the full set, the same seeds, tested once; where the lines "
                            "part is what pretraining buys.")
        s.tables.append(("Learning curves (test x 100, mean ± std over seeds)",
                         ["model", *[f"{t} @ {p['train_size']}" for t in tasks for p in curves[next(iter(curves))][t]]],
                         [[model, *[f"{100 * p['test'][0]:.1f} ± {100 * p['test'][1]:.1f}" for t in tasks for p in per[t]]]
                          for model, per in curves.items()]))
        if (folder / "learning_curves.png").is_file():
            s.images.append(("test score against training examples, per task", folder / "learning_curves.png"))

    errors = read_json(folder / "errors.json") or {}
    ner_rows, cls_rows = [], []
    for model, per_task in errors.items():
        for task, runs in per_task.items():
            for r in runs:
                if "counts" in r:
                    c = r["counts"]
                    ner_rows.append([model, r["task"], *[number(c[k]) for k in ("correct", "type", "boundary", "boundary+type",
                                                                            "missed", "spurious")]])
                else:
                    n = r["negation"]
                    cls_rows.append([model, r["task"], number(r["errors"]), f"{100 * n['share_of_errors']:.0f}%",
                                     f"{100 * n['share_of_all']:.0f}%", f"{100 * n['error_rate_with_negation']:.1f}%",
                                     f"{100 * n['error_rate_without_negation']:.1f}%"])
    e.paragraphs.append("Each model's best run (by dev) on each test set; examples and confusion matrices are in "
                        f"`{folder / 'errors.md'}`.")
    if ner_rows:
        e.tables.append(("NER: every gold and predicted entity in one category", ["model", "task", "correct", "type",
                         "boundary", "boundary+type", "missed", "spurious"], ner_rows))
    if cls_rows:
        e.tables.append(("Sentiment: errors and negation cues (לא, אין, אל, בלי, ...)", ["model", "task", "errors",
                         "errors with a cue", "texts with a cue", "error rate with a cue", "without"], cls_rows))
    return [s, e]


@stage_section("decoder", "Decoder", "decoder")
def decoder_section(folder: Path, stats: dict, s: Section) -> None:
    import math

    config = read_json(folder / "model" / "config.json") or {}
    val = stats.get("final_val_loss")
    load = stats.get("final_max_over_mean_load")
    s.paragraphs.append(
        f"{config.get('model_type', 'causal LM')} decoder, {stats['parameters']:,} parameters, "
        f"{stats['active_parameters']:,} active per token ({stats['active_parameters'] / stats['parameters']:.0%}); "
        f"{stats['steps']:,} steps, about {stats['tokens_seen']:,} tokens seen in {stats['wall_seconds'] / 60:.1f} min "
        f"on {stats['processes']} process(es); final training loss {stats['final_loss']:.3f}"
        + (f", validation loss {val:.3f} (perplexity {math.exp(min(val, 50)):,.1f})" if val else "")
        + f"; {stats['spikes']} loss spikes recovered. Expert balancing: {stats.get('balancing', 'n/a')}"
        + (f"; the busiest expert had {load:.2f} x the mean load at the end" if load else "")
        + f". The exported model is `{folder / 'model'}`.")
    s.summary.append(f"Decoder: {stats['parameters'] / 1e6:,.1f}M parameters ({stats['active_parameters'] / 1e6:,.1f}M "
                     f"active), {stats['tokens_seen'] / 1e6:,.1f}M tokens"
                     + (f", validation perplexity {math.exp(min(val, 50)):,.1f}." if val else "."))
    if (folder / "curves.png").is_file():
        s.images.append(("decoder training loss and validation perplexity", folder / "curves.png"))
    if (folder / "expert_load.png").is_file():
        s.images.append(("each expert's share of its layer's tokens at the end", folder / "expert_load.png"))


@stage_section("extend", "Hebrew vocabulary extension", "extend")
def extend_section(folder: Path, stats: dict, s: Section) -> None:
    before, after = stats["speed_before"], stats["speed_after"]
    s.paragraphs.append(
        f"{stats['tokens_added']:,} Hebrew tokens added to `{stats['base']}` (ids {stats['first_new_id']:,} to "
        f"{stats['vocab_size'] - 1:,}; every existing id unchanged), each new embedding row the mean of the rows of "
        f"the pieces that spelled it. Newest examples: {', '.join(stats['examples'])}.")
    rows = [["tokens per word", f"{stats['tokens_per_word_before']:.2f}", f"{stats['tokens_per_word_after']:.2f}"]]
    if before is not None:  # extend.measure_speed
        rows += [["training, words/s", f"{before['train_words_per_s']:,.0f}", f"{after['train_words_per_s']:,.0f}"],
                 ["generation, characters/s", f"{before['generate_chars_per_s']:,.1f}",
                  f"{after['generate_chars_per_s']:,.1f}"]]
    s.tables.append(("Before and after, on the Hebrew corpus's validation text", ["", "before", "after"], rows))
    s.summary.append(f"Vocabulary extension: {stats['tokens_added']:,} Hebrew tokens, "
                     f"{stats['tokens_per_word_before']:.2f} -> {stats['tokens_per_word_after']:.2f} tokens per word.")


@stage_section("gguf", "GGUF export (llama.cpp, Ollama)", "gguf")
def gguf_section(folder: Path, stats: dict, s: Section) -> None:
    check = stats.get("check")
    s.paragraphs.append(f"`{stats['source']}` converted by llama.cpp's converter; an Ollama Modelfile beside the files "
                        f"(docs/serve.md). " + ("Each file loaded by llama.cpp and compared with `transformers` on "
                        f"the folder: {len(check['prompts'])} prompts, {check['new_tokens']} greedy tokens each, bits "
                        f"per byte on {check['heldout_sentences']} held-out Hebrew sentences (transformers: "
                        f"{check['transformers_bits_per_byte']:.4f})." if check else "Not checked: llama.cpp's "
                        "Python binding was not installed."))
    rows = []
    for name, f in stats["files"].items():
        r = (check or {}).get("files", {}).get(name)
        rows.append([name, f["type"], f"{f['bytes'] / 1e6:,.1f} MB"] + (
            [f"{r['greedy_same_prompts']}/{r['prompts']}", f"{r['top1_agreement']:.1%}", f"{r['bits_per_byte']:.4f}"]
            if r else ["-", "-", "-"]))
    s.tables.append(("Files", ["file", "type", "size", "greedy tokens same", "top-1 agreement", "bits per byte"], rows))
    for line in (check or {}).get("disagreements", []):
        s.paragraphs.append(f"**Differs from transformers:** {line}.")
    if check:
        first = next(iter(check["files"].values()))
        s.summary.append(f"GGUF: {len(stats['files'])} file(s); llama.cpp gives transformers' greedy tokens for "
                         f"{first['greedy_same_prompts']} of {first['prompts']} prompts.")


@stage_section("cpt", "Continued pretraining (curriculum)", "cpt")
def cpt_section(folder: Path, stats: dict, s: Section) -> None:
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    forgetting = stats.get("forgetting")
    s.paragraphs.append(
        f"Continued from `{stats.get('init_from') or 'the base'}`: {stats['steps']:,} steps "
        f"({stats['curriculum']} curriculum, {len(stats['phases'])} phase(s)). Hebrew validation loss "
        f"{fmt(stats.get('base_val_loss'))} -> {fmt(stats.get('final_val_loss'))}"
        + (f"; anchor-language loss {fmt(stats.get('base_anchor_loss'))} -> {fmt(stats.get('final_anchor_loss'))} "
           f"(forgetting {forgetting:+.3f})" if forgetting is not None else "; no anchor language measured") + ".")
    s.tables.append(("Phases, in the order they ran", ["phase", "steps", "Hebrew tokens", "anchor tokens", "anchor share",
                                                       "Hebrew loss at its end", "anchor loss at its end"],
                     [[p["phase"], f"{p['first_step']}-{p['first_step'] + p['steps']}", number(p["hebrew_tokens"]),
                       number(p["anchor_tokens"]), f"{p['anchor_share']:.0%}", fmt(p["val_loss_at_end"]),
                       fmt(p["anchor_loss_at_end"])] for p in stats["phases"]]))
    bpb = stats.get("bits_per_byte") or {}
    if bpb:
        label = {"val_bpb": "Hebrew (all sources)", "anchor_bpb": "anchor language"}
        s.tables.append(("Bits per byte on the held-out pieces (lower is better; compares across tokenizers)",
                         ["text", "the base", "after", "change"],
                         [[label.get(k, "Hebrew: " + k.split("/", 1)[-1]), fmt(v["base"]), fmt(v["final"]),
                           f"{100 * (v['final'] - v['base']) / v['base']:+.1f}%" if v["base"] and v["final"] else "-"]
                          for k, v in bpb.items()]))
    agreement = stats.get("difficulty_agreement") or {}
    if agreement:
        names = list(agreement)
        s.tables.append(("Difficulty scorers: Spearman rank correlation over the training documents",
                         ["", *names], [[a, *[f"{agreement[a][b]:+.2f}" for b in names]] for a in names]))
    by_source = stats.get("difficulty_by_source") or {}
    if by_source:
        names = list(next(iter(by_source.values())))
        s.tables.append(("Mean difficulty score by source", ["source", *names],
                         [[src, *[f"{v[n]:.3f}" for n in names]] for src, v in by_source.items()]))
    s.summary.append(f"Continued pretraining: Hebrew loss {fmt(stats.get('base_val_loss'))} -> {fmt(stats.get('final_val_loss'))}"
                     + (f", anchor forgetting {forgetting:+.3f}." if forgetting is not None else "."))
    if (folder / "curriculum.png").is_file():
        s.images.append(("Hebrew and anchor validation loss by step, phases shaded", folder / "curriculum.png"))
    by_position = stats.get("loss_by_position")
    if by_position:
        ranges = list(by_position["final"])
        s.paragraphs.append(
            f"Sequences of up to {stats['max_seq_len']:,} tokens" + (", a work's documents read in order as one "
                                                                     "(join_related)" if stats.get("join_related") else "")
            + ". The validation loss by position of the predicted token tells whether the model uses the longer "
              "context: a loss that falls with position does; one that rises past the base's training length does not.")
        s.tables.append(("Hebrew validation loss by position", ["model", *ranges],
                         [[label, *[fmt(by_position[when].get(r)) for r in ranges]]
                          for when, label in (("base", "before (the base)"), ("final", "after"))]))
    if (folder / "loss_by_position.png").is_file():
        s.images.append(("Hebrew validation loss by position, before and after", folder / "loss_by_position.png"))


@stage_section("sft", "Supervised fine-tuning (chat)", "sft")
def sft_section(folder: Path, stats: dict, s: Section) -> None:
    val = stats.get("final_val_loss")
    s.paragraphs.append(
        f"{stats['steps']:,} steps on {stats['train_conversations']:,} conversations "
        f"({stats['validation_conversations']:,} held out), loss on the assistant's tokens only "
        f"({100 * stats['supervised_share']:.0f}% of the tokens); final training loss {stats['final_loss']:.3f}"
        + (f", held-out loss {val:.3f}" if val else "") + f". The chat model is `{folder / 'model'}` "
        f"(`hebrew-lm chat {folder / 'model'}`).")
    s.tables.append(("The mix", ["source", "conversations", "train", "held out", "dropped (too long)", "weight",
                                 "slots per batch"],
                     [[name, r["conversations"], r["train"], r["validation"], r["dropped"]["too_long"],
                       f"{r.get('weight', 0):g}", r.get("slots_per_batch", 0)] for name, r in stats["sources"].items()]))
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text(encoding="utf-8").splitlines()] \
        if (folder / "samples.jsonl").is_file() else []
    if samples:
        s.tables.append(("Chat samples (held-out prompts, greedy)", ["source", "prompt", "model", "reference"],
                         [[x["source"], x["messages"][-1]["content"][:160], x["answer"][:160], x["reference"][:160]]
                          for x in samples]))
    s.summary.append(f"SFT: {stats['train_conversations']:,} conversations, {stats['steps']} steps"
                     + (f", held-out assistant loss {val:.3f}." if val else "."))
    if (folder / "curves.png").is_file():
        s.images.append(("SFT training loss and held-out perplexity", folder / "curves.png"))


@stage_section("eval", "Few-shot evaluation", "eval")
def eval_section(folder: Path, stats: dict, s: Section) -> None:
    from hebrew_lm.evaluate.stage import cell

    table = read_json(folder / "results.json")
    if table is None:
        return
    tasks = table["tasks"]
    first = next(iter(table["models"].values()))["tasks"]
    s.paragraphs.append("Scores x 100, mean ± standard error from lm-evaluation-harness (bits per byte as they are: "
                        "lower is better, and never in the averages); the task files are in "
                        f"`{folder / 'tasks'}` and every scored item with each model's answer in `{folder / 'samples'}`. "
                        "A difference smaller than about twice the standard errors is noise.")
    contamination = table.get("contamination") or {}
    flagged = {t: r for t, r in (contamination.get("tasks") or {}).items() if r["contaminated"]}
    if flagged:
        s.paragraphs.append(f"Contamination ({contamination['ngram']}-word sequences also in the training corpora): " +
                            ", ".join(f"{t} {r['contaminated']} of {r['items']}" for t, r in flagged.items()) + ".")
    s.tables.append(("Models x tasks", ["model", *[f"{t} ({first[t]['num_fewshot']}-shot)" for t in tasks],
                                        "Hebrew average", "English average"],
                     [[name, *[cell(row["tasks"][t]) for t in tasks],
                       *[f"{100 * v:.1f}" if v is not None else "-" for v in row["averages"].values()]]
                      for name, row in table["models"].items()]))
    s.summary.append("Few-shot: " + "; ".join(
        f"{name} Hebrew {100 * (row['averages']['Hebrew'] or 0):.1f}"
        + (f", English {100 * row['averages']['English']:.1f}" if row["averages"].get("English") is not None else "")
        for name, row in table["models"].items()) + ".")
    if (folder / "results.png").is_file():
        s.images.append(("few-shot scores by model and task", folder / "results.png"))
    long_scores = read_json(folder / "long_context.json") or {}
    needle = {name: got["needle"] for name, got in long_scores.items() if "needle" in got}
    if needle:
        s.paragraphs.append("Long context (whole contexts, never cut to eval.max_length): he_needle asks for a number "
                            "stated once at a depth of held-out Hebrew text (exact match), he_longdoc how a phrase from "
                            "a long document's first tenth goes on (4 choices, chance 25), read against "
                            "he_longdoc_blind, the same questions without the document: only the difference is the "
                            "document's doing; the answer's log-likelihood gain from the document beyond the other "
                            "choices' (nats) is the finer reading.")
        lengths = list(next(iter(needle.values())))
        depths = list(next(iter(needle.values()))[lengths[0]])

        def longdoc(name: str) -> str:
            blind = long_scores[name].get("longdoc_blind") or {}
            gain = long_scores[name].get("longdoc_gain") or {}
            return ", ".join(f"{w}: {100 * v:.0f} / {100 * blind[w]:.0f}" if w in blind else f"{w}: {100 * v:.0f}"
                             for w, v in (long_scores[name].get("longdoc") or {}).items()) + \
                (" (answer's gain from the document: " + ", ".join(f"{v:+.2f}" for v in gain.values()) + " nats)"
                 if gain else "")

        s.tables.append(("he_needle exact match x 100 by context length (words); each cell the mean over depths "
                         + ", ".join(f"{float(d):.0%}" for d in depths),
                         ["model", *lengths, "he_longdoc by length: with the document / without"],
                         [[name, *[f"{100 * sum(grid[w].values()) / len(grid[w]):.0f}" for w in lengths], longdoc(name)]
                          for name, grid in needle.items()]))
    if (folder / "long_context.png").is_file():
        s.images.append(("he_needle exact match by context length and needle depth, one map per model",
                         folder / "long_context.png"))


def environment_section(timings_file: Path, started: float) -> Section:
    s = Section("environment", "Environment")
    versions = []
    for name in PACKAGES:
        try:
            versions.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            continue
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    s.tables.append(("Software", ["package", "version"], [["python", platform.python_version()], *versions]))
    s.tables.append(("Hardware", ["", ""], [["machine", f"{platform.system()} {platform.machine()}"],
                                           ["CPU cores", str(os.cpu_count())], ["GPU", gpu],
                                           ["report made", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))]]))
    timings = read_json(timings_file) if timings_file.name else None
    if timings:
        s.tables.append(("Wall time per stage (the last run that did the work)", ["stage", "minutes"],
                         [[k, f"{v / 60:.1f}"] for k, v in timings.items()]))
    return s


