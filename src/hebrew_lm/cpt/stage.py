"""The curriculum stage: the decoder's training (`hebrew_lm.decoder.stage.train_causal_lm`, the shared
engine) with the curriculum's data (`hebrew_lm.cpt.mixture`).

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
from hebrew_lm.decoder.stage import train_causal_lm
from hebrew_lm.runs import read_success


def run(config: CptConfig, force: bool = False) -> Path:
    """Continue `config.init_from` on the curriculum into `config.output_dir` and return that folder."""
    anchor_fp = None
    if config.anchor_corpus_dir:
        from hebrew_lm.corpus.shards import load_manifest

        load_manifest(config.anchor_corpus_dir)  # a clear error unless that corpus stage finished
        anchor_fp = read_success(Path(config.anchor_corpus_dir)).get("fingerprint")
    return train_causal_lm(config, "cpt", curriculum_data, force, anchor_corpus=anchor_fp)
