"""Public evaluation sets, converted from their own files into lm-eval tasks (`hebrew_lm.evaluate.tasks`).

`hebrew-lm eval --tasks heq arc_he ... --data_dir DIR` reads each set from DIR/<name>/. HeQ and HebNLI
come from `hebrew-lm data download heq hebnli` (GitHub, pinned commits, sha256 per file) in their own
format. The Hebrew versions of ARC, COPA, HellaSwag, MMLU and GSM8K and the psychometric sections live
on the Hugging Face hub (no pinned download here yet: docs/eval.md); any local JSONL with the columns
below works, as `shots.jsonl` (the split the shots come from: train or validation) and `test.jsonl`
(the scored split). The English counterparts take the same columns.

| format    | columns of each JSONL line                                          | tasks                       |
|-----------|---------------------------------------------------------------------|-----------------------------|
| letters   | question, choices (list), answer (0-based index or a letter A-H)    | arc_*, mmlu_*, psychometric |
| copa      | premise, choice1, choice2, question (cause or effect), label (0/1)  | copa_he                     |
| hellaswag | ctx, endings (list), label (index)                                  | hellaswag_*                 |
| gsm8k     | question, answer (its last line `#### <number>`)                    | gsm8k_*                     |

Protocol (the Hebatron team's config, few-shot counts after the Open LLM Leaderboard v1): letters,
copa and hellaswag are log-likelihood multiple choice (letters over " A", " B", ... after the listed
choices, with a Hebrew instruction header); gsm8k is generative, greedy, stopping at the next
"שאלה:", exact match on the first number of the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hebrew_lm.evaluate.tasks import Task, letters, write_task

LETTER_HEADER = {"Hebrew": "לפניכם שאלות רב-ברירה. ענו באות של התשובה הנכונה.",
                 "English": "The following are multiple choice questions. Answer with the letter of the correct choice."}
CHOICE_HEADER = {"Hebrew": "בחרו את ההמשך הנכון.", "English": "Choose the correct continuation."}
GSM_WORDS = {"Hebrew": ("שאלה:", "תשובה:"), "English": ("Question:", "Answer:")}


def _task(name: str, language: str, kind: str, shots: int, metric: str, header: str = "", **kw: Any) -> Task:
    return Task(name, language, kind, shots, metric, header, source=f"DATA_DIR/{name}", **kw)


PUBLIC: dict[str, tuple[str, Task]] = {name: (fmt, task) for name, fmt, task in (
    ("arc_he", "letters", _task("arc_he", "Hebrew", "multiple_choice", 25, "acc", LETTER_HEADER["Hebrew"])),
    ("mmlu_he", "letters", _task("mmlu_he", "Hebrew", "multiple_choice", 25, "acc", LETTER_HEADER["Hebrew"])),
    ("copa_he", "copa", _task("copa_he", "Hebrew", "multiple_choice", 5, "acc", CHOICE_HEADER["Hebrew"])),
    ("hellaswag_he", "hellaswag", _task("hellaswag_he", "Hebrew", "multiple_choice", 10, "acc", CHOICE_HEADER["Hebrew"])),
    ("gsm8k_he", "gsm8k", _task("gsm8k_he", "Hebrew", "generate_until", 5, "exact_match",
                                until=("שאלה:", "\n\n"), max_gen_toks=256)),
    ("psychometric_he_verbal", "letters", _task("psychometric_he_verbal", "Hebrew", "multiple_choice", 5, "acc",
                                                LETTER_HEADER["Hebrew"])),
    ("psychometric_he_quantitative", "letters", _task("psychometric_he_quantitative", "Hebrew", "multiple_choice", 5,
                                                      "acc", LETTER_HEADER["Hebrew"])),
    ("psychometric_he_english", "letters", _task("psychometric_he_english", "Hebrew", "multiple_choice", 5, "acc",
                                                 LETTER_HEADER["Hebrew"])),
    ("psychometric_he_reading", "letters", _task("psychometric_he_reading", "Hebrew", "multiple_choice", 2, "acc",
                                                 LETTER_HEADER["Hebrew"])),  # text sections: 2 shots
    ("arc_en", "letters", _task("arc_en", "English", "multiple_choice", 25, "acc", LETTER_HEADER["English"])),
    ("hellaswag_en", "hellaswag", _task("hellaswag_en", "English", "multiple_choice", 10, "acc", CHOICE_HEADER["English"])),
    ("gsm8k_en", "gsm8k", _task("gsm8k_en", "English", "generate_until", 5, "exact_match",
                                until=("Question:", "\n\n"), max_gen_toks=256)),
    ("heq", "heq", Task("heq", "Hebrew", "generate_until", 2, "f1", "ענו על השאלה בציטוט קצר מתוך הקטע.",
                        max_gen_toks=48, source="HeQ v1.1 (NNLP-IL, CC BY 4.0): shots from val, scored test")),
    ("smcd", "smcd", Task("smcd", "Hebrew", "multiple_choice", 6, "acc", "סווגו את הסנטימנט של כל תגובה.",
                          source="SMCD (Amram et al. 2018; OnlpLab's deduplicated token split): shots from train, "
                                 "scored test_gold")),
    ("hebnli", "hebnli", Task("hebnli", "Hebrew", "multiple_choice", 6, "acc",
                              "האם ההנחה מחייבת את ההשערה? ענו כן, לא או אולי.",
                              source="HebNLI (NNLP-IL): shots from val, scored the gold test (hebrew_label)")),
)}


def read_jsonl(path: Path, required: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) of each line (the one labelled-JSONL reader, `jsonl_records`); a missing column is an
    error naming the file and line."""
    from hebrew_lm.records import jsonl_records

    for n, row in jsonl_records(path):
        where = f"{path}:{n}"
        missing = [c for c in required if c not in row]
        if missing:
            raise ValueError(f"{where}: missing column(s) {missing}")
        yield where, row


def _choice_list(value: Any, where: str, column: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) and c.strip() for c in value):
        raise ValueError(f"{where}: `{column}` must be a non-empty list of non-empty strings")
    return value


def _gold(label: Any, count: int, where: str) -> int:
    """A 0-based index from an index, a digit string or a letter A-H."""
    value = label
    if isinstance(label, str) and re.fullmatch(r"[A-H]", label.strip()):
        value = "ABCDEFGH".index(label.strip())
    elif isinstance(label, str) and label.strip().isdigit():
        value = int(label)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        raise ValueError(f"{where}: label {label!r} is outside its {count} choices")
    return value


def convert_letters(path: Path, task: Task) -> list[dict[str, Any]]:
    rows = []
    for where, r in read_jsonl(path, ("question", "choices", "answer")):
        choices = _choice_list(r["choices"], where, "choices")
        query, options = letters(r["question"], choices)
        rows.append({"query": query, "choices": options, "gold": _gold(r["answer"], len(choices), where), "where": where})
    return rows


def convert_copa(path: Path, task: Task) -> list[dict[str, Any]]:
    connective = {"cause": "כי", "effect": "ולכן"}
    rows = []
    for where, r in read_jsonl(path, ("premise", "choice1", "choice2", "question", "label")):
        if r["question"] not in connective:
            raise ValueError(f"{where}: question must be cause or effect, got {r['question']!r}")
        premise = r["premise"].strip().rstrip(".")
        rows.append({"query": f"{premise} {connective[r['question']]}",
                     "choices": [" " + _choice_list([r["choice1"], r["choice2"]], where, "choice1/choice2")[i]
                                 for i in (0, 1)],
                     "gold": _gold(r["label"], 2, where), "where": where})
    return rows


def convert_hellaswag(path: Path, task: Task) -> list[dict[str, Any]]:
    rows = []
    for where, r in read_jsonl(path, ("ctx", "endings", "label")):
        endings = _choice_list(r["endings"], where, "endings")
        rows.append({"query": r["ctx"].strip(), "choices": [" " + e.strip() for e in endings],
                     "gold": _gold(r["label"], len(endings), where), "where": where})
    return rows


def convert_gsm8k(path: Path, task: Task) -> list[dict[str, Any]]:
    q, a = GSM_WORDS[task.language]
    rows = []
    for where, r in read_jsonl(path, ("question", "answer")):
        m = re.search(r"####\s*(-?[\d,.]+)\s*$", str(r["answer"]))
        if not m:
            raise ValueError(f"{where}: answer must end with `#### <number>`")
        rows.append({"query": f"{q} {r['question'].strip()}\n{a}", "answers": [m.group(1).replace(",", "")],
                     "where": where})
    return rows


def convert_heq(path: Path, task: Task) -> list[dict[str, Any]]:
    """SQuAD-2.0 JSON; unanswerable questions are left out (a generative model answers every question)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not SQuAD-style JSON with a `data` list ({e})") from None
    rows = []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answers = [x["text"] for x in qa.get("answers", []) if x.get("text", "").strip()]
                if qa.get("is_impossible") in (True, "TRUE") or not answers:
                    continue
                rows.append({"query": f"קטע: {paragraph['context'].strip()}\nשאלה: {qa['question'].strip()}\nתשובה:",
                             "answers": answers, "where": f"{path}:data[{a}].paragraphs[{p}] id {qa.get('id')}",
                             "context": paragraph["context"].strip(), "question": qa["question"].strip()})
    return rows


HEBNLI_LABELS = ("entailment", "neutral", "contradiction")


def convert_hebnli(path: Path, task: Task) -> list[dict[str, Any]]:
    """The Hebrew pair; the gold Hebrew label where the file has one (test), else the English one."""
    rows = []
    for where, r in read_jsonl(path, ("translation1", "translation2")):
        label = r.get("hebrew_label") or r.get("original_label")
        if label == "-":
            continue  # no annotator agreement in MultiNLI
        if label not in HEBNLI_LABELS:
            raise ValueError(f"{where}: label {label!r} is outside {list(HEBNLI_LABELS)}")
        rows.append({"query": f"הנחה: {r['translation1'].strip()}\nהשערה: {r['translation2'].strip()}\nתשובה:",
                     "choices": [" כן", " אולי", " לא"], "gold": HEBNLI_LABELS.index(label), "where": where})
    return rows


def convert_smcd(path: Path, task: Task) -> list[dict[str, Any]]:
    """SMCD's `comment<TAB>label` file (labels 0/1/2), read by the fine-tuning track's own reader; the
    label words the embedded demo task uses."""
    from hebrew_lm.embedded.sentiment_demo import LABELS, SENTIMENT_WORDS
    from hebrew_lm.finetune.data import read_classification
    from hebrew_lm.finetune.tasks import SMCD_LABELS

    choices = [" " + SENTIMENT_WORDS[label] for label in LABELS]
    rows = []
    for e in read_classification(path, known_labels=set(SMCD_LABELS)):
        if e.label not in SMCD_LABELS:
            raise ValueError(f"{e.where}: label {e.label!r} is not one of SMCD's {sorted(SMCD_LABELS)}")
        rows.append({"query": f"תגובה: {e.text}\nסנטימנט:", "choices": choices,
                     "gold": LABELS.index(SMCD_LABELS[e.label]), "where": e.where})
    return rows


CONVERTERS = {"letters": convert_letters, "copa": convert_copa, "hellaswag": convert_hellaswag,
              "gsm8k": convert_gsm8k, "heq": convert_heq, "hebnli": convert_hebnli, "smcd": convert_smcd}
# Where each set's two files lie under DATA_DIR/<name>/: (shots, scored); the downloaded layouts, else our JSONL pair.
FILES = {"heq": ("val v1.1.json", "test v1.1.json"), "hebnli": ("HebNLI_val.jsonl", "HebNLI_test.jsonl"),
         "smcd": ("Sentiment_Data/token/train.tsv", "Sentiment_Data/token/test_gold.tsv")}


def build_public_task(folder: Path, name: str, data_dir: Path) -> str:
    """Convert DATA_DIR/<name>'s files into the task's JSONL pair and YAML in `folder`."""
    fmt, task = PUBLIC[name]
    from hebrew_lm.download import SOURCES

    shots_name, test_name = FILES.get(name, ("shots.jsonl", "test.jsonl"))
    where = data_dir / name
    checkout = where / SOURCES[name][2] if name in SOURCES and SOURCES[name][2] else None
    if checkout and not (where / test_name).is_file() and (checkout / test_name).is_file():
        where = checkout  # a checkout of the source repository (HeQ's files in data/data v1.1/)
    paths = [where / shots_name, where / test_name]
    for path in paths:
        if not path.is_file():
            how = f"`hebrew-lm data download {name} --output_dir {data_dir}`" if name in FILES else \
                "a local JSONL in the columns docs/eval.md gives"
            raise ValueError(f"eval: task {name} needs {path} ({how})")
    shots, test = (CONVERTERS[fmt](path, task) for path in paths)
    if len(shots) < task.shots:
        raise ValueError(f"eval: {paths[0]} has {len(shots)} usable items; task {name} needs {task.shots} shots")
    return write_task(folder, task, shots, test)
