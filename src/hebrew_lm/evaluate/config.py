"""The evaluation stage's config (`hebrew-lm eval --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from hebrew_lm.config import bounded, check_ranges
from hebrew_lm.evaluate.tasks import EMBEDDED, LONG_CONTEXT


@dataclass
class EvalConfig:
    """`hebrew-lm eval`: causal LMs -> few-shot scores on Hebrew and English tasks (lm-evaluation-harness), side by side."""

    SECTION: typing.ClassVar[str] = "eval"
    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, typing.Any]] = {
        "models": ["decoder/model", "cpt/model"], "hebrew_corpus_dir": "hebrew_corpus", "english_corpus_dir": "corpus",
        "train_corpus_dirs": ["corpus", "hebrew_corpus"], "output_dir": "eval"}

    output_dir: str
    """Folder for the task files, results.md/csv/json/png and per-sample logs (default: RUN_DIR/eval)."""
    models: list[str]
    """Local Hugging Face causal-LM folders to evaluate (default: RUN_DIR/decoder/model and RUN_DIR/cpt/model)."""
    model_names: list[str] = field(default_factory=list)
    """A row name for each model, each distinct (default: its folder's name, or its stage's for a `model` folder, with as many parent folders as tell the models apart: a/cpt, b/cpt)."""
    tasks: list[str] = field(default_factory=lambda: ["embedded"])
    f"""embedded (every embedded task the corpora and packages allow: {', '.join(t for t in EMBEDDED if t not in LONG_CONTEXT)}); long_context (he_needle and he_longdoc from the Hebrew corpus's held-out text, at every length of context_words, with the whole context: never cut to max_length); public sets read from data_dir (heq, hebnli, smcd, arc_he, copa_he, hellaswag_he, mmlu_he, gsm8k_he, psychometric_he_*, arc_en, hellaswag_en, gsm8k_en); names of tasks whose YAMLs lie in task_dirs. docs/eval.md describes each."""
    task_dirs: list[str] = field(default_factory=list)
    """Folders of more lm-eval task YAMLs (local JSONL files: `dataset_path: json` with `data_files`)."""
    data_dir: str = "data"
    """Where the public sets lie, one folder per task (DATA_DIR/heq from `hebrew-lm data download heq`; DATA_DIR/arc_he/{shots,test}.jsonl)."""
    train_corpus_dirs: list[str] = field(default_factory=list)
    """Corpus stages the models trained on: scored items sharing an n-word sequence with their train split are counted as contaminated (default: RUN_DIR/corpus and RUN_DIR/hebrew_corpus)."""
    contamination_ngram: int = bounded("[4, inf)", 8)
    """Words in the sequences the contamination check looks for."""
    hebrew_corpus_dir: str = ""
    """A finished Hebrew corpus stage whose validation split (held out from training) makes he_cloze (default: RUN_DIR/hebrew_corpus)."""
    english_corpus_dir: str = ""
    """A finished English corpus stage whose validation split makes en_cloze, to see forgetting (default: RUN_DIR/corpus)."""
    context_words: list[int] = bounded("[20, 100000]", default_factory=lambda: [100, 200, 400])
    """long_context: the lengths of the contexts, in words (Hebrew: about 2.3 tokens a word with the tiny preset's extended tokenizer, 1.3-1.6 with a large Hebrew vocabulary)."""
    needle_depths: list[float] = bounded("[0, 1]", default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    """long_context: where in the context he_needle plants its sentence (0: the start, 1: the end)."""
    limit: int = bounded("[0, inf)", 0)
    """Items per task at most (0: all); for quick checks, never for reported numbers."""
    batch_size: int = bounded("[1, inf)", 8)
    """lm-eval's batch size for log-likelihood and generation requests (on CPU, 8 measured as fast as any: bench/eval.py)."""
    max_length: int = bounded("[0, inf)", 0)
    """Tokens of context a request keeps, the rest cut from the left (0: the model's own maximum); the length the model was trained on is the honest choice."""
    device: str = "cpu"
    """cpu or cuda."""

    def __post_init__(self) -> None:
        check_ranges(self, "eval")
        if self.model_names and len(self.model_names) != len(self.models):
            raise ValueError(f"eval.model_names: {len(self.model_names)} names for {len(self.models)} models")
        if len(set(self.model_names)) < len(self.model_names):
            raise ValueError(f"eval.model_names: each model needs its own name (a row and a folder), got {self.model_names}")
        if not self.models:
            raise ValueError("eval.models: give at least one causal-LM folder")
