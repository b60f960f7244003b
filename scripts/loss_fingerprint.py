"""Print a tiny masked-LM run's loss sequence and a hash of its final weights, to check that a change to
the training engine keeps training bit for bit the same on this CPU.

    git stash; python scripts/loss_fingerprint.py /tmp/fp > before.json; git stash pop
    python scripts/loss_fingerprint.py /tmp/fp > after.json; diff before.json after.json

Two recipes, 20 steps each at batch 8 x 32 tokens with gradient accumulation and checkpoints: the
tiny preset's defaults, and whole-word masking at 30% with gradient clipping. The corpus and tokenizer
are built once from the embedded classical texts into FOLDER (reused on later calls).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file

from hebrew_lm.config import CorpusConfig, InputSpec, PretrainConfig, TokenizerConfig
from hebrew_lm.corpus.build import run as build_corpus
from hebrew_lm.mlm import train as pretrain
from hebrew_lm.tokenizer.train import run as train_tokenizer


def main() -> None:
    root = Path(sys.argv[1])
    logging.disable(logging.INFO)
    if not (root / "tok" / "_SUCCESS").is_file():
        build_corpus(CorpusConfig(output_dir=str(root / "corpus"), inputs=[InputSpec("embedded:scriptures")],
                                  num_workers=1, validation_fraction=0.01, near_dedup=False, max_chars=20_000))
        train_tokenizer(TokenizerConfig(corpus_dir=str(root / "corpus"), output_dir=str(root / "tok"), vocab_size=1000,
                                        sample_bytes=2_000_000, audit=False))
    result = {}
    for name, recipe in (("default", {}), ("wwm-clip", {"whole_word_masking": True, "mlm_probability": 0.3,
                                                         "grad_clip": 1.0})):
        out = root / name
        shutil.rmtree(out, ignore_errors=True)
        pretrain.run(PretrainConfig(
            corpus_dir=str(root / "corpus"), tokenizer_dir=str(root / "tok"), output_dir=str(out),
            cache_dir=str(root / "cache"), model="tiny", max_seq_len=32, global_batch_size=8, micro_batch_size=4,
            max_steps=20, warmup_steps=2, learning_rate=1e-3, log_every=1, eval_every=10, eval_batches=2,
            checkpoint_every=5, keep_checkpoints=2, **recipe))
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        weights = load_file(str(out / "model" / "model.safetensors"))
        digest = hashlib.sha256()
        for key in sorted(weights):
            digest.update(key.encode() + weights[key].numpy().tobytes())
        result[name] = {"losses": [r["loss"] for r in records if "loss" in r and "event" not in r],
                        "val_losses": [r["val_loss"] for r in records if "val_loss" in r],
                        "weights_sha256": digest.hexdigest()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
