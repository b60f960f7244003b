"""The fine-tuning stage's config: its tasks and grid (`hebrew-lm finetune --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

from hebrew_lm.config import bounded, check_ranges


@dataclass
class TaskSpec:
    """One fine-tuning task. In YAML either a bare name (`nemo`) or a mapping."""

    name: str
    """nemo, bmc, smcd (the paper's benchmarks, read from DATA_DIR/<name>), htb-ner, sentiment-demo (embedded, offline), or any name for your own data (give train, dev, test)."""
    kind: Literal["auto", "ner", "classification"] = "auto"
    """ner (word tags, BIOES or BIO) or classification (one label per text); auto: known for the built-in tasks, else from the train file (.bmes/.bio/.conll/.iob: ner)."""
    path: str = ""
    """Built-in tasks: the folder holding the data (default: DATA_DIR/<name>, as `hebrew-lm data download` lays it out, or the files' own repository layout)."""
    train: str = ""
    """Your own task: the train file. NER: `word TAG` lines (CoNLL, BIOES or BIO) or JSONL with `tokens` and `tags` lists; classification: `text<TAB>label` lines or JSONL with `text` and `label`."""
    dev: str = ""
    """Your own task: the dev file (model selection and early stopping)."""
    test: str = ""
    """Your own task: the test file (scored once, with the hyperparameters dev chose)."""
    variant: str = ""
    """nemo: spmrl (default, the split encoder papers report) or ud, token level; spmrl-morph or ud-morph for the morpheme-level files (gold segmentation). smcd: clean (default, deduplicated) or unclean."""
    splits: list[str] = field(default_factory=list)
    """bmc: which of its three random splits to run (default all: 1 2 3), reported as mean +- std."""
    max_epochs: int = bounded("[0, 10000]", 0)
    """Epochs at most for this task's trials; 0: finetune.max_epochs (a small data set may want more)."""

    @classmethod
    def from_str(cls, value: str) -> TaskSpec:
        return cls(name=value)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a task needs a `name`")
        from hebrew_lm.runs import safe_component

        safe_component(self.name, "finetune: task name")  # it names a folder under the output
        check_ranges(self, f"finetune.tasks[{self.name}]")


@dataclass
class FinetuneConfig:
    """`hebrew-lm finetune`: encoders -> fine-tuned on NER and sentiment with a grid search, scored on test once."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {"output_dir": "finetune", "models": ["pretrain/model"]}

    output_dir: str
    """Folder for trials, results (results.md/csv/json/png), error analysis and the best fine-tuned models (default: RUN_DIR/finetune)."""
    models: list[str] = field(default_factory=list)
    """Encoder folders to evaluate (any local Hugging Face encoder with a tokenizer). Empty: RUN_DIR/pretrain/model."""
    model_names: list[str] = field(default_factory=list)
    """A row name for each of `models` (default: from the folder path)."""
    random_init_baseline: bool = True
    """Add a row for the first model's architecture from random initialization: what pretraining bought."""
    tasks: list[TaskSpec] = field(default_factory=lambda: [TaskSpec("bmc"), TaskSpec("nemo"), TaskSpec("smcd")])
    """Tasks to run (default: the paper's bmc, nemo, smcd)."""
    data_dir: str = "data"
    """Where the built-in benchmarks live, one folder each (`hebrew-lm data download` writes there)."""
    learning_rates: list[float] = bounded("(0, 1]", default_factory=lambda: [1e-5, 2e-5, 3e-5, 5e-5])
    """Grid: peak learning rates."""
    batch_sizes: list[int] = bounded("[1, 65536]", default_factory=lambda: [16, 32])
    """Grid: batch sizes."""
    seeds: list[int] = bounded("[0, 4294967295]", default_factory=lambda: [1, 2, 3])
    """Seeds per grid point; scores are mean +- std over them."""
    max_epochs: int = bounded("[1, 10000]", 20)
    """Epochs at most; early stopping usually ends a trial sooner."""
    patience: int = bounded("[1, 10000]", 3)
    """Stop after this many epochs without a better dev score; the best epoch's weights are kept."""
    train_fractions: list[float] = bounded("(0, 1]", default_factory=list)
    """Learning curves: also fine-tune every model on these fractions of each task's training set (e.g. 0.01 0.05 0.25 1) with the chosen hyperparameters and seeds, and plot test score against training size; empty: none."""
    ner_decoding: Literal["argmax", "viterbi"] = "viterbi"
    """NER tags per word: viterbi (the likeliest legal BIOES sequence; +4 to +6 F1 on dev and test of the tiny preset's NER, docs/decisions.md) or argmax (each word its likeliest label; may be ill-formed BIOES, which strict scoring drops). Both F1s are recorded in each trial's test metrics."""
    warmup_ratio: float = bounded("[0, 1)", 0.1)
    """Share of the planned steps spent warming the learning rate up (then linear decay)."""
    weight_decay: float = bounded("[0, 1]", 0.01)
    """AdamW weight decay."""
    max_seq_len: int = bounded("[0, 4096]", 0)
    """Tokens per input; 0: the 95th percentile of tokenized train lengths, rounded up to a multiple of 64 (the paper got 64 and 192). Longer NER sentences are cut into word-aligned windows (no word goes unscored); longer texts are truncated and counted."""
    padding: Literal["bucketed", "longest", "max_length"] = "bucketed"
    """bucketed: batches of inputs of similar length, each padded to its longest (ours); longest: random batches padded to their longest (what transformers' collators do by default); max_length: every input padded to max_seq_len."""
    repair_tags: bool = False
    """Repair illegal BIOES transitions on load (counted and reported) instead of stopping with an error."""
    export_best: bool = True
    """Export each model's best fine-tuned model per task (by dev) to OUTPUT/models/<model>/<task>, loadable with `pipeline`."""
    error_examples: int = bounded("[0, 100000]", 20)
    """Examples per error category written to the error analysis."""
    threads: int = bounded("[0, 1024]", 0)
    """CPU threads for torch; 0: torch's default."""

    def __post_init__(self) -> None:
        if not self.learning_rates or not self.batch_sizes or not self.seeds:
            raise ValueError("finetune.learning_rates, batch_sizes and seeds must each have at least one value")
        check_ranges(self, "finetune")
        if self.max_seq_len and not 8 <= self.max_seq_len <= 4096:
            raise ValueError(f"finetune.max_seq_len must be 0 (auto) or in [8, 4096], got {self.max_seq_len}")
        if self.model_names and len(self.model_names) != len(self.models):
            raise ValueError("finetune.model_names needs one name per entry of finetune.models")
        from hebrew_lm.runs import safe_component

        for name in self.model_names:
            safe_component(name, "finetune: model name")  # it names a folder under the output
        names = [t.name for t in self.tasks]
        if len(set(names)) < len(names):
            raise ValueError(f"finetune.tasks: each task name once, got {names}")
