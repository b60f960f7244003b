"""What the evaluation stage checks before any model loads: each model folder is a causal LM with an
end token, each task's local files hold what its templates read (file:line errors), and every answer
fits `--max_length`. The rules are stated in docs/rules.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hebrew_lm.evaluate.public import read_jsonl
from hebrew_lm.evaluate.tasks import load_task_yaml


def check_model(folder: Path) -> None:
    """A one-line error unless `folder` is a causal LM that transformers loads and has an end-of-sequence token."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"eval: {folder} is not a Hugging Face model folder (no config.json)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not any(a.endswith("ForCausalLM") for a in config.get("architectures") or []):
        raise ValueError(f"eval: {folder} is not a causal LM (architectures {config.get('architectures')})")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as e:
        raise ValueError(f"eval: {folder} has no tokenizer that transformers loads ({str(e).splitlines()[0]})") from None
    if tokenizer.eos_token is None:
        raise ValueError(f"eval: {folder}'s tokenizer has no end-of-sequence token")


def _json_type(value: Any) -> str:
    """A value's type as a dataset column holds it (an int and a float are both numbers)."""
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def check_task(yaml_path: Path) -> dict[str, Any]:
    """Read a task YAML and check its local files line by line: JSON objects, the columns its templates use,
    one type per column across all its files (a label that is a string in one file and a number in another
    breaks the dataset), labels inside the choices and never NaN, non-empty choices and answers, each scored
    item (and id) once, and no scored item among the shots."""
    task = load_task_yaml(yaml_path)
    files = (task.get("dataset_kwargs") or {}).get("data_files") or {}
    if task.get("dataset_path") != "json" or not files:
        return task  # not a local-file task: lm-eval checks it
    templates = " ".join(str(task.get(k, "")) for k in ("doc_to_text", "doc_to_choice", "doc_to_target"))
    target = str(task.get("doc_to_target", ""))
    columns = set(re.findall(r"\{\{\s*(\w+)", templates)) | ({target} if re.fullmatch(r"\w+", target) else set())
    test_split = task.get("test_split", "test")
    seen: dict[str, dict[str, str]] = {}
    types: dict[str, tuple[str, str]] = {}
    for split, name in files.items():
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"{yaml_path}: {split} file {path} not found")
        seen[split], ids = {}, {}
        for where, row in read_jsonl(path, tuple(sorted(columns))):
            for column in sorted(columns | {"id"} & set(row)):
                value = row[column]
                if isinstance(value, float) and value != value:
                    raise ValueError(f"{where}: `{column}` is NaN; give a value")
                kind, first = types.setdefault(column, (_json_type(value), where))
                if _json_type(value) != kind:
                    raise ValueError(f"{where}: `{column}` is a {_json_type(value)} here but a {kind} at {first}; "
                                     "a column holds one type in every file of a task")
            if task.get("output_type") == "multiple_choice" and "choices" in row:
                if not isinstance(row["choices"], list) or not row["choices"]:
                    raise ValueError(f"{where}: `choices` must be a non-empty list")
                gold = row.get(target)
                if isinstance(gold, int) and not 0 <= gold < len(row["choices"]):
                    raise ValueError(f"{where}: label {gold} is outside its {len(row['choices'])} choices")
                if gold is not None and not isinstance(gold, (int, str)):
                    raise ValueError(f"{where}: label {gold!r} is neither a choice's index nor a choice")
            if "answers" in row and (not isinstance(row["answers"], list) or not row["answers"]):
                raise ValueError(f"{where}: `answers` must be a non-empty list")
            key = json.dumps({k: v for k, v in row.items() if k != "where"}, sort_keys=True, ensure_ascii=False)
            if split == test_split:  # a scored item counted twice weighs twice in the mean, silently
                if key in seen[split]:
                    raise ValueError(f"{where}: the same scored item as {seen[split][key]}; score each item once")
                if "id" in row and row["id"] in ids:
                    raise ValueError(f"{where}: id {row['id']!r} again (first at {ids[row['id']]}); ids are unique")
                ids[row.get("id")] = where
            seen[split].setdefault(key, where)
    test, shots = seen.get(test_split, {}), seen.get(task.get("fewshot_split", "train"), {})
    overlap = sorted(set(test) & set(shots))
    if overlap:
        raise ValueError(f"{test[overlap[0]]}: a scored item is also a few-shot example ({shots[overlap[0]]}); "
                         "the two must not overlap")
    return task


def check_continuations(task: dict[str, Any], tokenizer, max_length: int, model: Path) -> None:
    """--max_length must hold every answer a multiple-choice task scores (lm-eval cuts the context, never the
    continuation, and stops with a bare assertion otherwise): checked on the tokenizer before a model loads."""
    files = (task.get("dataset_kwargs") or {}).get("data_files") or {}
    test = files.get(task.get("test_split", "test"))
    if task.get("output_type") != "multiple_choice" or not test:
        return
    delimiter = task.get("target_delimiter", " ")
    for where, row in read_jsonl(Path(test), ()):
        for choice in row.get("choices") or []:
            n = len(tokenizer(delimiter + str(choice), add_special_tokens=False)["input_ids"])
            if n > max_length:
                raise ValueError(f"eval.max_length {max_length} is shorter than an answer of task {task.get('task')} "
                                 f"({where}: {n} tokens with {model}'s tokenizer); raise --max_length or leave it 0")
