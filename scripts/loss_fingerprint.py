"""Print the loss sequences of tiny training runs and a hash of their final weights, to check that a change
to the training engine (or a move of its code) keeps training bit for bit the same on this CPU.

    git stash; python scripts/loss_fingerprint.py /tmp/fp > before.json; git stash pop
    python scripts/loss_fingerprint.py /tmp/fp > after.json; diff before.json after.json

Five recipes, each with gradient accumulation and checkpoints, run through `hebrew-lm run` so the script
does not depend on where the code lives:
- encoder `default` and `wwm-clip` (whole-word masking at 30%, gradient clipping): 20 masked-LM steps on
  the embedded classical texts;
- `decoder`: 12 steps of the tiny MoE decoder on generated English text;
- `cpt`: 8 steps continued on generated Hebrew in two phases (by source, then a difficulty quantile) with
  25% English anchoring;
- `sft`: 6 steps of fine-tuning the cpt model on a generated conversation file.
Corpora and tokenizers are built into FOLDER once and reused on later calls; training folders are redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import shutil
import sys
from pathlib import Path

import yaml
from safetensors.torch import load_file

from hebrew_lm.cli import main as cli

ENGLISH = ("now is the winter of our discontent made glorious summer by this sun of york friends romans "
           "countrymen lend me your ears i come to bury caesar not to praise him all the world a stage").split()
HEBREW = ("ויאמר אלהים אל משה לאמר דבר אל בני ישראל ואמרת אליהם כי תבאו אל הארץ אשר אני נתן לכם "
          "המשנה אומרת שהאדם חייב לברך על הטובה כשם שהוא מברך על הרעה העיר גדולה והשוק מלא אנשים").split()


def lines(words: list[str], n: int, seed: int, length=(12, 40)) -> str:
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(*length))) for _ in range(n)) + "\n"


def fingerprint(folder: Path) -> dict:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    weights = load_file(str(folder / "model" / "model.safetensors"))
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode() + weights[key].float().numpy().tobytes())
    return {"losses": [r["loss"] for r in records if "loss" in r and "event" not in r],
            "val_losses": [r["val_loss"] for r in records if "val_loss" in r],
            "weights_sha256": digest.hexdigest()}


def run(root: Path, name: str, preset: dict, redo: list[str]) -> None:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(root / name), **preset}, allow_unicode=True))
    for stage in redo:
        shutil.rmtree(root / name / stage, ignore_errors=True)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the fingerprint's alone
        assert cli(["-q", "run", str(path)]) == 0, name


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    root.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.INFO)
    result = {}
    train = {"log_every": 1, "eval_batches": 2, "keep_checkpoints": 2}
    for name, recipe in (("default", {}), ("wwm-clip", {"whole_word_masking": True, "mlm_probability": 0.3,
                                                         "grad_clip": 1.0})):
        run(root, name, {"stages": ["corpus", "tokenizer", "pretrain"],
                         "corpus": {"inputs": ["embedded:scriptures"], "num_workers": 1, "validation_fraction": 0.01,
                                    "near_dedup": False, "max_chars": 20_000},
                         "tokenizer": {"vocab_size": 1000, "sample_bytes": 2_000_000, "audit": False},
                         "pretrain": {"model": "tiny", "max_seq_len": 32, "global_batch_size": 8, "micro_batch_size": 4,
                                      "max_steps": 20, "warmup_steps": 2, "learning_rate": 1e-3, "eval_every": 10,
                                      "checkpoint_every": 5, **train, **recipe}}, ["pretrain"])
        result[name] = fingerprint(root / name / "pretrain")

    texts = {"en.txt": lines(ENGLISH, 300, 1), "he-a.txt": lines(HEBREW, 150, 2),
             "he-b.txt": lines(HEBREW, 150, 3, (30, 60))}
    rng = random.Random(4)
    texts["chats.jsonl"] = "".join(json.dumps({"messages": [
        {"role": "user", "content": " ".join(rng.choices(HEBREW, k=6))},
        {"role": "assistant", "content": " ".join(rng.choices(ENGLISH, k=8))}]}, ensure_ascii=False) + "\n"
        for _ in range(80))
    for name, text in texts.items():
        if not (root / name).is_file():  # written once: a corpus's fingerprint covers its files' times
            (root / name).write_text(text, encoding="utf-8")
    corpus = {"min_hebrew_ratio": 0.0, "num_workers": 1, "near_dedup": False, "validation_fraction": 0.1,
              "min_words": 3}
    common = {"max_seq_len": 48, "global_batch_size": 4, "micro_batch_size": 2, "warmup_steps": 2,
              "learning_rate": 3e-3, "checkpoint_every": 4, **train}
    decoder_run = root / "decoder-track"
    run(root, "decoder-track", {
        "stages": ["corpus", "tokenizer", "decoder", "hebrew_corpus", "cpt", "sft"],
        "corpus": {**corpus, "inputs": [str(root / "en.txt")]},
        "hebrew_corpus": {"stage": "corpus", **corpus, "inputs": [{"path": str(root / "he-a.txt"), "name": "a"},
                                                                   {"path": str(root / "he-b.txt"), "name": "b"}]},
        "tokenizer": {"vocab_size": 500, "audit": False},
        "decoder": {**common, "max_steps": 12, "eval_every": 6},
        "cpt": {**common, "max_steps": 8, "eval_every": 4, "anchor_share": 0.25, "phases": [
            {"name": "a", "share": 0.5, "sources": ["a"]},
            {"name": "hard", "share": 0.5, "difficulty": "compression_ratio", "quantiles": [0.5, 1.0]}]},
        "sft": {**common, "max_seq_len": 96, "max_steps": 6, "eval_every": 3, "init_from": str(decoder_run / "cpt" / "model"),
                "tokenizer_dir": str(decoder_run / "cpt" / "model"), "inputs": [str(root / "chats.jsonl")]},
    }, ["decoder", "cpt", "sft"])
    for stage in ("decoder", "cpt", "sft"):
        result[stage] = fingerprint(decoder_run / stage)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
