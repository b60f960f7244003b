"""Model cards for fine-tuned models: YAML front matter with `model-index` results that
`huggingface_hub.ModelCard.load` parses offline, and a body that says how the model was made."""

from __future__ import annotations

from huggingface_hub import EvalResult, ModelCardData

PIPELINE = {"ner": "token-classification", "classification": "text-classification"}
METRIC = {"ner": ("f1", "entity micro F1 (seqeval, strict IOBES)"), "classification": ("f1", "macro F1")}


def fine_tuned_card(model_name: str, base: str, random_init: bool, task, cell: dict) -> str:
    kind = task.kind
    metric_type, metric_name = METRIC[kind]
    scores = cell["test_scores"]
    mean = sum(scores) / len(scores)
    data = ModelCardData(
        language="he", license="other", library_name="transformers", pipeline_tag=PIPELINE[kind],
        tags=["hebrew", "hebrew-lm", "ner" if kind == "ner" else "sentiment-analysis"],
        model_name=model_name,
        eval_results=[EvalResult(task_type=PIPELINE[kind], dataset_type=task.task, dataset_name=task.title,
                                 dataset_split="test", metric_type=metric_type, metric_name=metric_name,
                                 metric_value=round(mean, 4))],
    )
    origin = (f"the architecture of `{base}` from random initialization (a baseline)" if random_init
              else f"the encoder `{base}`")
    use = ('pipeline("token-classification", model="PATH", aggregation_strategy="simple")' if kind == "ner"
           else 'pipeline("text-classification", model="PATH")')
    labels = ", ".join(task.data.labels)
    return f"""---
{data.to_yaml()}
---

# {model_name}

{task.title} {"NER" if kind == "ner" else "sentiment"} model fine-tuned by
[hebrew-lm](https://github.com/) from {origin}. {"Entity types" if kind == "ner" else "Labels"}: {labels}.

Chosen on dev from the grid (learning rate {cell["learning_rate"]:g}, batch size {cell["batch_size"]}, max
length {cell["max_seq_len"]} tokens); this is the seed with the best dev score. Test {metric_name}: mean
{100 * mean:.2f} over {len(scores)} seed(s) at that grid point ({", ".join(f"{100 * s:.2f}" for s in scores)}).

```python
from transformers import pipeline
model = {use}
```

## Data and license

{task.license or "Your own data: check its terms."} The model inherits the terms of its training data
and of the encoder it started from.
"""


def encoder_card_with_results(model_dir: str, row_name: str, results: dict, tasks: list) -> str | None:
    """The model card of a hebrew-lm encoder with the finetune stage's test results in its model-index.

    Returns the new card's text (the stage writes it into its own output; the encoder folder is an
    input and is never changed), or None for cards that hebrew-lm's pretrain stage did not write."""
    from pathlib import Path

    from huggingface_hub import ModelCard

    path = Path(model_dir) / "README.md"
    if not path.is_file():
        return None
    card = ModelCard.load(str(path))
    if "hebrew-lm" not in (card.data.tags or []):
        return None
    row = results["models"][row_name]
    evals = []
    for task in {t.task: t for t in tasks}.values():
        kind = task.kind
        summary = row["tasks"][task.task]
        evals.append(EvalResult(task_type=PIPELINE[kind], dataset_type=task.task, dataset_name=task.title,
                                dataset_split="test", metric_type=METRIC[kind][0], metric_name=METRIC[kind][1],
                                metric_value=round(summary["test"]["mean"], 4)))
    card.data.model_name = card.data.model_name or row_name
    card.data.eval_results = evals
    marker = "\n## Fine-tuning results\n"
    text = card.text.split(marker)[0].rstrip("\n")
    lines = [f"| {t.title} | {METRIC[t.kind][1]} | {100 * row['tasks'][t.task]['test']['mean']:.2f} "
             f"± {100 * row['tasks'][t.task]['test']['std']:.2f} |" for t in {t.task: t for t in tasks}.values()]
    card.text = (text + "\n" + marker + "\nTest scores x 100 (mean ± std over seeds), from hebrew-lm's finetune stage "
                 "with the paper's protocol (grid search, selection on dev, test once):\n\n| task | metric | score |\n"
                 "|---|---|---:|\n" + "\n".join(lines) + "\n")
    return str(card)
