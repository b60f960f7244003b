"""The curriculum stage: a causal-LM stage on the shared engine (`hebrew_lm.decoder.stage.causal_lm_stage`)
with the curriculum's data (`hebrew_lm.cpt.mixture`).

    hebrew-lm cpt configs/tiny-decoder.yaml
    hebrew-lm run configs/tiny-decoder.yaml --from hebrew_corpus

Output folder: as the decoder stage's (model/, checkpoints/, metrics.jsonl, curves.png, expert load),
plus curriculum.png (Hebrew and anchor validation loss by step, phases shaded) and, in stats.json, the
per-phase table (steps, Hebrew and anchor tokens, losses at the phase's end), the base's own losses,
forgetting (the anchor loss's rise) and the difficulty scorers' agreement. A context-extension run (a
second instance at a longer max_seq_len, docs/cpt.md) adds loss_by_position.png and its table.
"""

from __future__ import annotations

from pathlib import Path

from hebrew_lm.cpt.config import CptConfig
from hebrew_lm.cpt.mixture import curriculum_data
from hebrew_lm.decoder.stage import causal_lm_stage
from hebrew_lm.engine.runner import run_training_stage
from hebrew_lm.runs import read_success


def anchor_fingerprint(config: CptConfig) -> dict[str, str | None]:
    """The anchor corpus the checkpoints depend on (a clear error unless that corpus stage finished)."""
    if not config.anchor_corpus_dir:
        return {"anchor_corpus": None}
    from hebrew_lm.corpus.shards import load_manifest

    load_manifest(config.anchor_corpus_dir)
    return {"anchor_corpus": read_success(Path(config.anchor_corpus_dir)).get("fingerprint")}


STAGE = causal_lm_stage("cpt", curriculum_data, inputs=anchor_fingerprint)


def run(config: CptConfig, force: bool = False) -> Path:
    """Continue `config.init_from` on the curriculum into `config.output_dir` and return that folder."""
    return run_training_stage(config, STAGE, force)
