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
