"""The pretraining stage: export, exact resume after SIGKILL, spike recovery, DDP equivalence, bad input."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from hebrew_lm.mlm.config import PretrainConfig
from hebrew_lm.mlm import stage as pretrain

from helpers import corpus_and_tokenizer, run_ok


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, hebrew_docs):
    return corpus_and_tokenizer(tmp_path_factory.mktemp("pre"), hebrew_docs[:250])


def settings(root, out, **overrides):
    values = dict(corpus_dir=str(root / "corpus"), tokenizer_dir=str(root / "tok"), output_dir=str(out),
                  cache_dir=str(root / "cache"), model="tiny", max_seq_len=32, global_batch_size=8,
                  micro_batch_size=4, max_steps=20, warmup_steps=2, learning_rate=1e-3, log_every=1,
                  eval_every=10, eval_batches=2, checkpoint_every=5, keep_checkpoints=2)
    values.update(overrides)
    return values


def losses(out):
    return [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "loss" in r and "event" not in r]


def test_tiny_pretraining_exports_a_model_that_fill_mask_loads(inputs, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForMaskedLM, pipeline

    out = pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "pt")))
    curve = losses(out)
    assert len(curve) == 20 and curve[-1] < curve[0]  # it learns
    assert len(list((out / "checkpoints").glob("ckpt-*"))) == 2  # keep_checkpoints
    model = AutoModelForMaskedLM.from_pretrained(str(out / "model"))
    assert model.config.vocab_size == 1000 and model.config.num_hidden_layers == 2
    fill = pipeline("fill-mask", model=str(out / "model"))
    predictions = fill("ויאמר משה אל <mask> העם")
    assert len(predictions) == 5 and all("<mask>" not in p["sequence"] for p in predictions)
    card = ModelCard.load(str(out / "model" / "README.md"))
    assert card.data.language == "he" and card.data.pipeline_tag == "fill-mask"
    # The corpus input was an absolute local path: the card names the file, never the machine's path.
    assert card.data.datasets == ["in.jsonl"] and str(inputs) not in card.content
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"] == 20 and stats["tokens_seen"] == 20 * 8 * 32 and stats["final_val_loss"] > 0
    assert (out / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_killed_run_resumes_with_the_exact_same_losses(inputs, tmp_path):
    def config(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / name),
                                        "pretrain": settings(inputs, tmp_path / name / "pretrain", max_steps=40,
                                                             checkpoint_every=7, keep_checkpoints=2)}))
        return path

    cmd = [sys.executable, "-m", "hebrew_lm", "pretrain"]
    run_ok(cmd + [str(config("straight"))])
    reference = losses(tmp_path / "straight" / "pretrain")
    killed = config("killed")
    out = tmp_path / "killed" / "pretrain"
    proc = subprocess.Popen(cmd + [str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoints" / "ckpt-00000014").exists():
        time.sleep(0.02)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists()
    resumed = run_ok(cmd + [str(killed)])
    assert losses(out) == reference  # bit for bit, on CPU with a fixed seed
    # ... and it got there from the checkpoint: a restart from step 0 would reproduce the same losses with a
    # fixed seed, so the resumed process must have logged no step at or before the one it resumed from.
    start = int(re.search(r"resumed from \S+ \(step (\d+)\)", resumed.stderr).group(1))
    logged = [int(n) for n in re.findall(r"step\s+(\d+) \| loss", resumed.stderr)]
    assert start >= 14 and logged and min(logged) == start + 1


def run_with_a_fault(inputs, out, monkeypatch, factor, **overrides):
    """A run whose first micro-batch of step 13 has its loss multiplied by `factor`; returns the run folder
    and the (unmasked) sequences of every micro-batch in call order, the faulty one's index among them."""
    original = pretrain.MaskedLMObjective.forward
    seen: list[torch.Tensor] = []
    faulty = 2 * 12  # two micro-batches a step: the 25th call

    def forward_with_a_fault(self, inputs_, labels):
        seen.append(torch.where(labels >= 0, labels, inputs_).clone())
        loss = original(self, inputs_, labels)
        return loss * factor if len(seen) == faulty + 1 else loss

    monkeypatch.setattr(pretrain.MaskedLMObjective, "forward", forward_with_a_fault)
    out = pretrain.run(PretrainConfig(**settings(inputs, out, **overrides)))
    return out, seen, faulty


def test_a_nan_loss_restores_the_last_checkpoint_and_skips_the_batch(inputs, tmp_path, monkeypatch, caplog):
    out, seen, faulty = run_with_a_fault(inputs, tmp_path / "pt", monkeypatch, float("nan"))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["spikes"] == 1 and stats["steps"] == 20
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e.get("event") == "spike"] == [10]  # back to the step-10 checkpoint
    assert all(torch.isfinite(torch.tensor(losses(out))))
    assert "is a spike" in caplog.text
    # The offending sequences are skipped: after the restore, no micro-batch trains on them again.
    bad = seen[faulty]
    assert not any(torch.equal(bad, later) for later in seen[faulty + 1:])


@pytest.mark.parametrize("factor, spikes", [(50.0, 1), (3.0, 0)])
def test_a_finite_loss_above_spike_factor_times_the_median_is_a_spike(inputs, tmp_path, monkeypatch, factor, spikes):
    """spike_factor 5: a loss 50x the median of recent losses restores the checkpoint; 3x does not."""
    out, _, _ = run_with_a_fault(inputs, tmp_path / "pt", monkeypatch, factor, spike_factor=5.0)
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e.get("event") == "spike"] == [10] * spikes
    assert json.loads((out / "stats.json").read_text())["spikes"] == spikes


def test_checkpoint_from_another_config_and_a_corrupt_checkpoint(inputs, tmp_path, caplog):
    out = tmp_path / "pt"
    pretrain.run(PretrainConfig(**settings(inputs, out, max_steps=10)))
    (out / "_SUCCESS").unlink()
    with pytest.raises(ValueError, match="another config"):
        pretrain.run(PretrainConfig(**settings(inputs, out, max_steps=10, learning_rate=5e-4)))
    newest = sorted((out / "checkpoints").glob("ckpt-*"))[-1]
    (newest / "model.safetensors").write_bytes(b"not a checkpoint")
    pretrain.run(PretrainConfig(**settings(inputs, out, max_steps=10)))
    assert "is corrupt" in caplog.text and "falling back" in caplog.text
    assert json.loads((out / "stats.json").read_text())["steps"] == 10
    # --force asks for a new build: an unfinished run of another config is cleared, not an error
    (out / "_SUCCESS").unlink()
    pretrain.run(PretrainConfig(**settings(inputs, out, max_steps=10, learning_rate=5e-4)), force=True)
    assert yaml.safe_load((out / "config.yaml").read_text())["learning_rate"] == 5e-4


def test_too_small_a_corpus_is_a_clear_error(inputs, tmp_path, hebrew_lines):
    from helpers import build, write_jsonl

    build(tmp_path / "small", [write_jsonl(tmp_path / "s.jsonl", hebrew_lines[:3])])
    with pytest.raises(ValueError, match="fewer than one sequence"):
        pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "pt", corpus_dir=str(tmp_path / "small"),
                                               max_seq_len=512)))
    with pytest.raises(ValueError, match=r"max_seq_len is 1024, more than the 512 positions the tokenizer declares"):
        pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "pt2", max_seq_len=1024)))


TWO_PROCESS_RUN = dict(max_steps=30, checkpoint_every=3, eval_every=10, dropout=0.0)


def two_process_config(inputs, root, name, **overrides):
    """A run of TWO_PROCESS_RUN in ROOT/NAME: the settings the sharded tests share, so one FSDP run serves
    as the reference of them all (dropout 0 so that one process can reach the same weights)."""
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(root / name), "pretrain": settings(
        inputs, root / name / "pretrain", **TWO_PROCESS_RUN, **overrides)}))
    return path


@pytest.fixture(scope="module")
def fsdp_run(inputs, tmp_path_factory):
    """TWO_PROCESS_RUN on two processes with FSDP, uninterrupted."""
    root = tmp_path_factory.mktemp("fsdp")
    run_ok(torchrun(29521, "-m", "hebrew_lm", "pretrain", str(two_process_config(inputs, root, "fsdp", fsdp=True))),
           env={**os.environ, "OMP_NUM_THREADS": "1"})
    return root / "fsdp" / "pretrain"


@pytest.mark.slow
def test_two_processes_reach_the_weights_of_one_with_twice_the_accumulation(inputs, fsdp_run, tmp_path):
    """DDP and FSDP each against one process (a process start is most of each run)."""
    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_ok([sys.executable, "-m", "hebrew_lm", "pretrain", str(two_process_config(inputs, tmp_path, "one"))], env=env)
    one = load_file(str(tmp_path / "one" / "pretrain" / "model" / "model.safetensors"))
    run_ok(torchrun(29517, "-m", "hebrew_lm", "pretrain", str(two_process_config(inputs, tmp_path, "ddp"))), env=env)
    for sharding, out in (("ddp", tmp_path / "ddp" / "pretrain"), ("fsdp", fsdp_run)):
        stats = json.loads((out / "stats.json").read_text())
        assert stats["sharding"] == sharding and stats["processes"] == 2
        two = load_file(str(out / "model" / "model.safetensors"))
        assert one.keys() == two.keys()
        for name in one:
            assert torch.allclose(one[name], two[name], atol=1e-5), (sharding, name)


@pytest.mark.slow
def test_run_under_torchrun_needs_the_data_stages_finished_first(inputs, tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "stages": ["corpus", "pretrain"],
                                      "corpus": {"inputs": [str(inputs / "in.jsonl")]}}))
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29518",
              "-m", "hebrew_lm", "run", str(config)]
    result = subprocess.run(launch, capture_output=True, text=True)
    assert result.returncode != 0
    assert "under torchrun the corpus stage must be finished first" in result.stderr
    assert not (tmp_path / "run" / "corpus").exists()


def torchrun(port, *args):
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), *args]


def kill_process_tree(pid):
    """SIGKILL a process and all its descendants, found through /proc."""
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    doomed, todo = [], [pid]
    while todo:
        doomed.append(todo.pop())
        todo.extend(children.get(doomed[-1], []))
    for p in doomed:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_fsdp_run_killed_mid_run_resumes_with_the_same_losses_and_weights(inputs, fsdp_run, tmp_path):
    """The sharded paths of a checkpoint: gathering full weights and optimizer state from both
    processes, and scattering them back on resume. (Dropout's random state is the single-process
    test's: every rank draws alike, and rank 0's state is the one saved.)"""
    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = torchrun(29519, "-m", "hebrew_lm", "pretrain")
    killed, out = two_process_config(inputs, tmp_path, "killed", fsdp=True), tmp_path / "killed" / "pretrain"
    proc = subprocess.Popen(launch + [str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoints" / "ckpt-00000003").exists():
        time.sleep(0.02)
    kill_process_tree(proc.pid)  # the workers too: killing the launcher's process group left them running
    proc.wait()
    assert not (out / "_SUCCESS").exists()
    resumed_run = run_ok(launch + [str(killed)], env=env)
    # from a checkpoint past step 0 (a failed restore would fall back to step 0 and also match)
    assert "is corrupt" not in resumed_run.stderr
    assert re.search(r"resumed from \S+ckpt-\d+ \(step [1-9]\d*\)", resumed_run.stderr), resumed_run.stderr[-3000:]
    assert json.loads((out / "stats.json").read_text())["sharding"] == "fsdp"
    assert losses(out) == pytest.approx(losses(fsdp_run), abs=1e-6)
    straight = load_file(str(fsdp_run / "model" / "model.safetensors"))
    resumed = load_file(str(out / "model" / "model.safetensors"))
    for name in straight:
        assert torch.allclose(straight[name], resumed[name], atol=1e-6), name


@pytest.mark.slow
def test_fsdp_nan_loss_restores_the_sharded_checkpoint(inputs, tmp_path):
    config = tmp_path / "p.yaml"
    out = tmp_path / "run" / "pretrain"
    config.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "pretrain": settings(
        inputs, out, max_steps=8, checkpoint_every=2, eval_every=100, fsdp=True)}))
    script = os.path.join(os.path.dirname(__file__), "pretrain_with_a_nan.py")
    # 2 processes x 4 sequences make the global batch of 8: one forward per step, so call 5 is step 5
    result = subprocess.run(torchrun(29520, script, "5", str(config)), capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is a spike" in result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["spikes"] == 1 and stats["steps"] == 8 and stats["sharding"] == "fsdp"
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e.get("event") == "spike"] == [4]  # back to the step-4 checkpoint
    assert all(torch.isfinite(torch.tensor(losses(out)))) and len(losses(out)) == 8


def test_bf16_autocast_trains_in_bfloat16_close_to_fp32(inputs, tmp_path):
    fp32 = losses(pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "fp32", max_steps=4, dropout=0.0))))
    bf16 = losses(pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "bf16", max_steps=4, dropout=0.0,
                                                         precision="bf16"))))
    # step 1 sees the same weights and batch: bfloat16 matmuls round differently, but not by much
    assert 0 < abs(bf16[0] - fp32[0]) < 0.05
    assert all(torch.isfinite(torch.tensor(bf16)))


@pytest.mark.slow
def test_compiled_model_gives_the_eager_losses(inputs, tmp_path):
    from torch._dynamo.utils import counters

    counters.clear()
    eager = losses(pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "eager", max_steps=3, dropout=0.0))))
    compiled = losses(pretrain.run(PretrainConfig(**settings(inputs, tmp_path / "compiled", max_steps=3,
                                                             dropout=0.0, compile=True))))
    assert counters["stats"]["unique_graphs"] > 0  # the forward really went through torch.compile
    assert compiled == pytest.approx(eager, abs=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_a_gpu_learns(inputs, tmp_path, precision):
    out = pretrain.run(PretrainConfig(**settings(inputs, tmp_path / precision, max_steps=20, precision=precision)))
    curve = losses(out)
    assert all(torch.isfinite(torch.tensor(curve))) and curve[-1] < curve[0]


def test_validation_always_masks_15_percent_of_single_tokens_whatever_the_training_recipe(inputs, tmp_path):
    """Two runs whose weights barely move (learning rate 1e-12) but whose training masking differs (15% of
    tokens against 40% of whole words) measure the same validation loss: validation masks its own way."""
    vals = []
    for name, recipe in (("a", {}), ("b", {"mlm_probability": 0.4, "whole_word_masking": True})):
        out = pretrain.run(PretrainConfig(**settings(inputs, tmp_path / name, max_steps=2, eval_every=2,
                                                     learning_rate=1e-12, dropout=0.0, **recipe)))
        vals.append([r["val_loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                     if "val_loss" in r])
    assert vals[0] == pytest.approx(vals[1], abs=1e-5)
    train = [losses(tmp_path / name) for name in ("a", "b")]
    assert abs(train[0][0] - train[1][0]) > 1e-3  # while the training losses, masked differently, differ
