"""The corpus stage's config: its inputs and every setting of the build (`hebrew-lm corpus build --help`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from hebrew_lm.config import bounded, check_ranges
from hebrew_lm.text.normalize import NormalizeConfig


@dataclass
class InputSpec:
    """One input of the corpus stage. In YAML either a bare string (the path) or a mapping."""

    path: str
    """A file, a glob (`data/**/*.jsonl.gz`), or an embedded source: `embedded:scriptures`, `embedded:htb-train`."""
    format: Literal["auto", "text", "jsonl", "parquet", "wiki"] = "auto"
    """How to read it; `auto` decides by the file name: .txt, .jsonl/.json, .parquet, .xml (each optionally .gz, .bz2 or .zst)."""
    name: str = ""
    """The source name in stats.json and in each document's `source` column; defaults to the path as written."""
    text_field: str = "text"
    """JSONL and Parquet: the field that holds the document text."""
    doc_per: Literal["line", "paragraph"] = "line"
    """Plain text: one document per line, or per paragraph (lines up to a blank line)."""

    @classmethod
    def from_str(cls, value: str) -> InputSpec:
        return cls(path=value)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("an input needs a non-empty `path`")
        if not self.name:
            self.name = self.path


@dataclass
class CorpusConfig:
    """`hebrew-lm corpus build`: raw Hebrew text -> clean, deduplicated, shuffled, sharded corpus."""

    RUN_DIR_DEFAULTS: typing.ClassVar[dict[str, str]] = {"output_dir": "corpus"}

    output_dir: str
    """Folder the corpus is written to (default: RUN_DIR/corpus)."""
    inputs: list[InputSpec] = field(default_factory=list)
    """Files, globs or embedded sources to read. Empty: the embedded default (classical texts + Hebrew Treebank train split)."""
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    """Hebrew normalization rules (see NormalizeConfig)."""
    min_words: int = bounded("[0, inf)", 5)
    """Drop documents with fewer whitespace-separated words than this (reason `too_short`)."""
    max_chars: int = bounded("[1, inf)", 1_000_000)
    """Drop documents longer than this many characters (reason `too_long`); a longer line is never held in memory whole."""
    min_hebrew_ratio: float = bounded("[0, 1]", 0.5)
    """Drop documents whose letters are less than this share Hebrew letters (reason `low_hebrew_ratio`)."""
    repetition_filter: bool = True
    """Gopher-style repetition filter: duplicate lines and repeated word n-grams (reasons `repetition_lines`, `repetition_ngrams`)."""
    repetition_tolerance: float = bounded("(0, inf)", 1.0)
    """Multiplier on Gopher's repetition thresholds (tuned for web pages); above 1 tolerates more. Classical texts quote themselves: at 1.0 the filter drops 28% of Talmud pages."""
    repetition_min_words: int = bounded("[0, inf)", 50)
    """Apply the n-gram part of the repetition filter only to documents with at least this many words (short ones give no reliable statistics)."""
    boilerplate_filter: bool = True
    """Remove boilerplate lines (bare URLs, menus, 'all rights reserved', 'read more'); drop the document if they were most of it (reason `boilerplate`)."""
    max_boilerplate_line_fraction: float = bounded("[0, 1]", 0.5)
    """Drop a document when more than this share of its lines is boilerplate."""
    exact_dedup: bool = True
    """Drop documents whose normalized text was already seen (reason `exact_duplicate`)."""
    near_dedup: bool = True
    """Drop near-duplicates found by MinHash LSH over word shingles (reason `near_duplicate`)."""
    near_dup_threshold: float = bounded("(0, 1)", 0.8)
    """Jaccard similarity of word-shingle sets at which two documents count as near-duplicates."""
    shingle_words: int = bounded("[1, inf)", 5)
    """Words per shingle for near-duplicate detection."""
    minhash_num_perm: int = bounded("[16, 8192]", 128)
    """Permutations (hash functions) per MinHash signature: more is sharper and slower."""
    validation_fraction: float = bounded("[0, 1)", 0.01)
    """Share of documents held out for validation, chosen by a seeded hash of the text (stable across reruns)."""
    seed: int = bounded("[0, 4294967295]", 0)
    """Seed of the shuffle and of the validation split."""
    shard_format: Literal["parquet", "jsonl.gz"] = "parquet"
    """File format of the output shards (columns: id, source, text)."""
    shard_size_mb: float = bounded("(0, inf)", 256)
    """Approximate text bytes per shard, in MB (fractions allowed)."""
    shuffle_buffer_mb: int = bounded("[1, inf)", 512)
    """Memory held while shuffling: the corpus is spread over buckets of about this size, each shuffled in memory."""
    num_workers: int = bounded("[0, 1024]", 0)
    """Processes for normalization, filters and MinHash; 0 uses every core, 1 runs in this process."""
    max_reject_chars: int = bounded("[0, inf)", 2000)
    """Characters of each dropped document kept in rejects.jsonl.gz (with its file, line and reason)."""
    executor: Literal["local", "slurm", "ray"] = "local"
    """Where the datatrove pipeline runs when tasks >= 1: local (processes on this machine), slurm (sbatch array jobs), ray (a Ray cluster: ray.init() finds it). Settings do not change the corpus: the same inputs and settings give the same documents on every executor."""
    tasks: int = bounded("[0, 100000]", 0)
    """0: the single-machine path (one process tree; the fastest on one host). N >= 1: the datatrove pipeline (read+filter+signatures, dedup buckets, clusters, filter, shards), its sharded stages in N tasks; input files are shared out among the tasks, so more tasks than files leave some idle."""
    workers: int = bounded("[0, 100000]", 0)
    """Tasks run at once (datatrove's `workers`); 0: all of them (local: at most the number of cores)."""
    executor_options: dict[str, Any] = field(default_factory=dict)
    """More arguments for datatrove's executor, e.g. slurm: {partition: cpu, time: "04:00:00", cpus_per_task: 2, mem_per_cpu_gb: 4, venv_path: .venv/bin/activate}; ray: {cpus_per_task: 1, mem_per_cpu_gb: 4}."""

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("corpus.output_dir is empty: set it, or set run_dir in the preset")
        check_ranges(self, "corpus")
        if self.executor != "local" and not self.tasks:
            raise ValueError(f"corpus.executor {self.executor} runs the datatrove pipeline: set corpus.tasks >= 1 "
                             f"(tasks 0 is the single-machine path)")
