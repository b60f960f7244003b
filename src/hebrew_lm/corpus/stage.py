"""The corpus stage: build the corpus in this process tree (`hebrew_lm.corpus.build`) or, with `tasks` >= 1,
as a datatrove pipeline on `executor` (`hebrew_lm.corpus.distributed`); both write the same bytes.

    hebrew-lm corpus build configs/tiny.yaml
    hebrew-lm corpus build configs/tiny.yaml --tasks 2
"""

from __future__ import annotations

from pathlib import Path

from hebrew_lm.corpus.build import build_here, build_plan
from hebrew_lm.corpus.config import CorpusConfig
from hebrew_lm.runs import check_finished, claim_output_dir


def run(config: CorpusConfig, force: bool = False) -> Path:
    """Build the corpus into `config.output_dir` and return that folder."""
    out, items, fp, num_buckets = build_plan(config)
    if check_finished(out, fp, "corpus", force):
        return out
    claim_output_dir(out, "corpus")
    if config.tasks:
        from hebrew_lm.corpus.distributed import run_pipeline  # datatrove, imported only when it runs

        run_pipeline(config, items, fp, num_buckets)  # its last task calls `build.finish`
    else:
        build_here(config, out, items, fp, num_buckets)
    return out
