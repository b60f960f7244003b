"""Small helpers for corpus tests: build a corpus in a temp folder and read back what it wrote."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq

from hebrew_lm.corpus.config import CorpusConfig, InputSpec
from hebrew_lm.corpus.stage import run


def run_ok(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command that must succeed; if it fails, the assertion shows the end of its stderr."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def build(out: Path, inputs: list, **overrides):
    settings = dict(num_workers=1, min_words=3, validation_fraction=0.0, exact_dedup=False, near_dedup=False)
    settings.update(overrides)
    specs = [InputSpec(**i) if isinstance(i, dict) else InputSpec(path=str(i)) for i in inputs]
    config = CorpusConfig(output_dir=str(out), inputs=specs, **settings)
    run(config)
    return read_stats(out), read_rejects(out)


def corpus_files(out: Path) -> dict[str, bytes]:
    """Every file a corpus build wrote, for comparing two builds byte for byte; not the ones that say how
    it ran (config.yaml, stats.json's `executor`, the datatrove logs) or when (_SUCCESS, stats.png)."""
    files = {p.name: p.read_bytes() for p in sorted(Path(out).iterdir())
             if p.is_file() and p.name not in ("_SUCCESS", "stats.png", "config.yaml")}
    stats = json.loads(files.pop("stats.json"))
    stats.pop("executor", None)
    return {**files, "stats.json": json.dumps(stats, sort_keys=True).encode()}


def read_stats(out: Path) -> dict:
    return json.loads((Path(out) / "stats.json").read_text(encoding="utf-8"))


def read_rejects(out: Path) -> list[dict]:
    with gzip.open(Path(out) / "rejects.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_corpus(out: Path, split: str = "train") -> list[dict]:
    manifest = json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8"))
    rows = []
    for shard in manifest["splits"][split]["shards"]:
        path = Path(out) / shard["file"]
        if path.name.endswith(".parquet"):
            rows.extend(pq.read_table(path).to_pylist())
        else:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                rows.extend(json.loads(line) for line in f)
    return rows


def reasons(rejects: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rejects:
        out[r["reason"]] = out.get(r["reason"], 0) + 1
    return out


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return path


def corpus_and_tokenizer(root: Path, texts: list[str], vocab_size: int = 1000) -> Path:
    """root/corpus (10% validation) and root/tok (a byte-level BPE, no audit) built from `texts`."""
    from hebrew_lm.tokenizer.config import TokenizerConfig
    from hebrew_lm.tokenizer.train import run as train_tokenizer

    build(root / "corpus", [write_jsonl(root / "in.jsonl", texts)], validation_fraction=0.1)
    train_tokenizer(TokenizerConfig(corpus_dir=str(root / "corpus"), output_dir=str(root / "tok"),
                                    vocab_size=vocab_size, audit=False))
    return root


def crash_at_step(monkeypatch, step: int) -> None:
    """Make a causal-LM run raise RuntimeError("killed") at the end of optimizer step `step` (from 1),
    after the checkpoints before it; `monkeypatch.undo()` lets the rerun resume normally."""
    from hebrew_lm.decoder.objective import CausalLMObjective

    original, calls = CausalLMObjective.after_step, []

    def crash(self):
        calls.append(1)
        if len(calls) == step:
            raise RuntimeError("killed")
        return original(self)

    monkeypatch.setattr(CausalLMObjective, "after_step", crash)


def logged_losses(folder) -> list[float]:
    """The training losses a run logged in folder/metrics.jsonl, in order."""
    import json
    from pathlib import Path

    return [json.loads(line)["loss"] for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()
            if '"loss"' in line]


def with_opening_bos(model_dir: Path, folder: Path) -> Path:
    """A copy of a tiny decoder whose tokenizer starts every text with <s> (as Gemma's does with <bos>,
    and Llama 2's with <s>)."""
    import shutil

    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    shutil.copytree(model_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.save(str(folder / "tokenizer.json"))
    return folder
