"""`hebrew-lm plan CONFIG`: what a preset will do and cost, without running anything.

Data sizes, tokens per step and in total, model parameters, training FLOPs, memory per device and
time estimates on this CPU and on common GPUs. Every estimate states its assumption:

- FLOPs per trained token = 6 x non-embedding parameters (forward and backward through every weight
  matrix) + the attention scores, 12 x layers x sequence length x hidden (Kaplan et al. 2020; Chowdhery
  et al. 2022) + the vocabulary projection, which our loop runs only at the masked positions.
- Memory per device = weights, gradients and two AdamW moments in fp32 (16 bytes a parameter; FSDP
  divides them by the devices) + activations of one micro-batch, 34 x seq x batch x hidden bytes a
  layer plus 5 x heads x seq^2 x batch for attention (Korthikanti et al. 2022), x2 in fp32.
- Time = FLOPs / (peak x MFU). GPUs at 40% of their dense peak (the issue's MFU goal for base on an
  H100); this CPU at its measured fp32 matmul rate x 30%.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hebrew_lm.presets import load_preset, stage_config

# Dense peak FLOP/s per GPU (vendor data sheets, no sparsity).
GPUS = {
    "A100 80GB": {"bf16": 312e12, "fp32": 19.5e12, "tf32": 156e12, "memory_gb": 80},
    "H100 SXM": {"bf16": 989e12, "fp32": 67e12, "tf32": 495e12, "memory_gb": 80},
    "H200": {"bf16": 989e12, "fp32": 67e12, "tf32": 495e12, "memory_gb": 141},
    "B200": {"bf16": 2250e12, "fp32": 80e12, "tf32": 1100e12, "memory_gb": 180},
}
GPU_MFU = 0.40
CPU_MFU = 0.30


def measured_matmul_flops(device: str = "cpu", dtype: str = "fp32", seconds: float = 0.5) -> float:
    """Matmul FLOP/s of this machine's `device` in `dtype` (fp32 or bf16), measured for about `seconds`:
    the peak that model FLOPs utilization (MFU) is measured against. Square matrices of 512 on a CPU,
    8192 on a GPU (large enough to saturate it)."""
    import torch

    n = 512 if device == "cpu" else 8192
    kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(n, n, device=device, dtype=kind), torch.randn(n, n, device=device, dtype=kind)

    def sync():
        if device != "cpu":
            torch.cuda.synchronize()

    a @ b
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        if count % 10 == 0:
            sync()
    sync()
    return count * 2 * n**3 / (time.perf_counter() - start)


def training_flops_per_token(preset: str, vocab_size: int, max_seq_len: int, mlm_probability: float) -> tuple[int, float]:
    """(parameters, training FLOPs per token) of a preset in our loop: 6 x non-embedding parameters +
    attention scores + the vocabulary projection at the masked positions only."""
    from hebrew_lm.mlm.model import PRESETS, build_model, roberta_config

    cfg = roberta_config(preset, vocab_size, max_seq_len)
    params = sum(p.numel() for p in build_model(cfg, "meta").parameters())  # meta: no memory
    layers, hidden = PRESETS[preset]["num_hidden_layers"], PRESETS[preset]["hidden_size"]
    # Embeddings are looked up, not multiplied; the output projection runs only at masked positions.
    dense = params - (vocab_size + max_seq_len + 2) * hidden
    return params, 6 * dense + 12 * layers * max_seq_len * hidden + 6 * vocab_size * hidden * mlm_probability


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    if seconds < 2 * 365 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / (365 * 86400):,.0f} years"


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:.0f} B"


def time_estimates(what: str, flops: float, precision: str, cpu_flops: float | None, devices: tuple[int, ...],
                   memory: float | None = None) -> list[str]:
    """Estimated time on this CPU (measured) and on common GPUs, each line with its assumption; with
    `memory`, whether one device holds it."""
    cpu = cpu_flops or measured_matmul_flops()
    lines = ["", f"Estimated {what} time (FLOPs / (peak x MFU); stated assumptions, not a measurement):",
             f"  this CPU           {_duration(flops / (cpu * CPU_MFU))}  (measured fp32 matmul {cpu / 1e9:,.0f} GFLOP/s "
             f"x {CPU_MFU:.0%} MFU)"]
    kind = "bf16" if precision in ("bf16", "fp16") else "tf32"
    for name, gpu in GPUS.items():
        rate = gpu[kind] * GPU_MFU
        est = ", ".join(f"{d} GPU{'s' if d > 1 else ''} {_duration(flops / (rate * d))}" for d in devices)
        fits = "" if memory is None else "; memory " + (
            "fits" if memory / 1e9 < gpu["memory_gb"] else "needs FSDP or a smaller micro-batch")
        lines.append(f"  {name:<18} {est}  ({kind} {gpu[kind] / 1e12:,.0f} TFLOP/s x {GPU_MFU:.0%} MFU{fits})")
    return lines


def plan(preset_path: str, overrides: dict[str, dict[str, Any]] | None = None, cpu_flops: float | None = None) -> str:
    """Each listed stage's plan entry (the stage registry names it), in pipeline order."""
    from hebrew_lm.stages import stage_of

    preset = load_preset(preset_path)
    overrides = overrides or {}
    lines = [f"Plan for {preset_path}: {preset.get('description', '')}".rstrip(": "),
             f"Stages: {' -> '.join(preset['stages'])} (run_dir {preset.get('run_dir', '-')})", ""]
    for name in preset["stages"]:
        stage = stage_of(preset, name)
        # an instance section (`stage: corpus`) is planned as its stage, from its own section
        section = dict(preset.get(name) or {})
        if name != stage.name and preset.get("run_dir") and not section.get("output_dir"):
            section["output_dir"] = str(Path(preset["run_dir"]) / name)  # its folder is named after it, as when it runs
        view = preset if name == stage.name else {**preset, stage.name: section}
        lines += stage.plan_lines(view, preset_path, overrides, cpu_flops)
    return "\n".join(lines).replace("\n\n\n", "\n\n")


def corpus_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    from hebrew_lm.corpus.config import InputSpec
    from hebrew_lm.corpus.readers import resolve_inputs
    from hebrew_lm.embedded.sources import DEFAULT_INPUTS

    corpus = stage_config(preset, "corpus", overrides.get("corpus"), source=preset_path)
    specs = corpus.inputs or [InputSpec(path=p) for p in DEFAULT_INPUTS]
    try:
        size = sum(r.size_estimate for r in resolve_inputs(specs))
        lines = [f"Corpus: {len(specs)} input(s), about {_bytes(size)} of raw text (compressed files x4)."]
    except ValueError as e:
        size = 49.1e9
        lines = [f"Corpus: inputs not on this machine ({e}); the paper's corpus was 49.1 GB after deduplication."]
    return lines + [corpus_cost(corpus, size)]


# Measured by bench/corpus.py at 1 GB on 2 cores (BENCHMARKS.md, docs/corpus.md): the single-machine
# path's throughput, the datatrove path's read+filter rate per task, the benchmark's mean document size,
# the single-machine dedup index per kept document, and a shuffle bucket's RSS per MB of text.
SINGLE_MACHINE_MB_S, PROCESS_MB_S_PER_TASK, DOC_BYTES, INDEX_BYTES_PER_DOC, BUCKET_RSS = 7.6, 4.7, 5_400, 1_400, 2.6


def corpus_cost(corpus, size: float) -> str:
    """The build's time and largest process on the configured path, from the measured rates."""
    bucket = BUCKET_RSS * corpus.shuffle_buffer_mb * 2**20
    if not corpus.tasks:
        index = size / DOC_BYTES * INDEX_BYTES_PER_DOC
        return (f"  single machine (tasks 0): about {_duration(size / 1e6 / SINGLE_MACHINE_MB_S)} on 2 cores, "
                f"largest process about {_bytes(index + bucket)} (the dedup index grows with the corpus; "
                f"past one host's memory, set corpus.tasks and an executor: docs/corpus.md)")
    return (f"  datatrove on {corpus.executor}, {corpus.tasks} tasks: the read+filter job about "
            f"{_duration(size / 1e6 / (PROCESS_MB_S_PER_TASK * corpus.tasks))} with one core a task, the largest "
            f"task about {_bytes(bucket)} (a shards task holding one shuffle bucket); the clusters and "
            f"finish jobs are one task each (docs/corpus.md)")


def tokenizer_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    tok = stage_config(preset, "tokenizer", overrides.get("tokenizer"), source=preset_path)
    return [f"Tokenizer: byte-level BPE, vocab {tok.vocab_size:,}, trained on a sample of up to "
            f"{_bytes(tok.sample_bytes)} (the whole training split when it is smaller)."]


def pretrain_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    from hebrew_lm.mlm.model import PRESETS

    stages = preset["stages"]
    pre = stage_config(preset, "pretrain", overrides.get("pretrain"), source=preset_path)
    vocab = stage_config(preset, "tokenizer", overrides.get("tokenizer"), source=preset_path).vocab_size \
        if "tokenizer" in stages or "tokenizer" in preset else 52_000
    params, flops_per_token = training_flops_per_token(pre.model, vocab, pre.max_seq_len, pre.mlm_probability)
    shape = PRESETS[pre.model]
    layers, hidden, heads = shape["num_hidden_layers"], shape["hidden_size"], shape["num_attention_heads"]
    tokens_per_step = pre.global_batch_size * pre.max_seq_len
    total_tokens = tokens_per_step * pre.max_steps
    flops = flops_per_token * total_tokens
    state = 16 * params
    act_bytes = 4 if pre.precision == "fp32" else 2
    activations = layers * (34 * pre.max_seq_len * pre.micro_batch_size * hidden
                            + 5 * heads * pre.max_seq_len ** 2 * pre.micro_batch_size) * act_bytes / 2
    lines = [
        "",
        f"Pretraining: {pre.model} preset, {params:,} parameters ({layers} layers, hidden {hidden}) at vocab {vocab:,}",
        f"  tokens per step   {tokens_per_step:,} ({pre.global_batch_size:,} sequences x {pre.max_seq_len})",
        f"  steps             {pre.max_steps:,} -> {total_tokens:,} tokens ({total_tokens / 1e9:,.2f}B)",
        f"  training FLOPs    {flops:.3g} ({flops_per_token:.3g} per token: 6 x non-embedding parameters + attention "
        f"+ the vocabulary projection at the {pre.mlm_probability:.0%} masked positions)",
        f"  memory per device {_bytes(state + activations)}: weights + gradients + AdamW {_bytes(state)} "
        f"(FSDP divides this by the devices), activations of a micro-batch of {pre.micro_batch_size} "
        f"{_bytes(activations)} ({pre.precision})",
    ]
    lines += time_estimates("pretraining", flops, pre.precision, cpu_flops, (1, 8, 64), state + activations)
    if pre.precision == "fp32":
        lines.append("  (fp32 as in the paper: GPU estimates assume TF32 matmuls; strict fp32 is ~8x slower; "
                     "--pretrain.precision bf16 doubles the GPU rate)")
    return lines


def finetune_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    lines: list[str] = []
    ft = stage_config(preset, "finetune", overrides.get("finetune"), source=preset_path)
    grid = len(ft.learning_rates) * len(ft.batch_sizes) * len(ft.seeds)
    runs = sum(len(t.splits or ["1", "2", "3"]) if t.name == "bmc" else 1 for t in ft.tasks)
    models = len(ft.models) + ft.random_init_baseline
    lines += ["", f"Fine-tuning: {models} model(s) x {runs} task run(s) ({', '.join(t.name for t in ft.tasks)}) x "
                  f"{grid} trials ({len(ft.learning_rates)} learning rates x {len(ft.batch_sizes)} batch sizes x "
                  f"{len(ft.seeds)} seeds) = {models * runs * grid} trials of at most {ft.max_epochs} epochs"]
    return lines


def report_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    return ["", f"Report: {Path(preset.get('run_dir', '.')) / 'report' / 'index.html'}"]


def decoder_flops_per_token(config, counts, max_seq_len: int) -> float:
    """Training FLOPs per token of a (MoE) causal LM: 6 x the active parameters that multiply (everything
    active but the input embeddings: the output projection runs at every position) + attention scores
    over the attention layers. The Mamba-2 scan itself is left out (small against its projections)."""
    from hebrew_lm.decoder.model import model_shape

    shape = model_shape(config)
    input_embeddings = shape.vocab * shape.hidden
    return 6 * (counts.active - input_embeddings) + 12 * shape.attention_layers * max_seq_len * shape.attention_width


def engine_for(total_params: int, routed_experts: int, n_experts: int, memory_gb: float, devices_per_node: int = 8) -> str:
    """Which engine a run needs, and why: FSDP2 under torchrun while the sharded training state fits a node
    and gathering every expert's weights each step is cheap; expert parallelism beyond that."""
    state_gb = 16 * total_params / 1e9
    per_device = state_gb / devices_per_node
    if n_experts >= 64 and routed_experts > 5e9:
        return (f"expert parallelism (Megatron-Bridge, or torchtitan's EP): {n_experts} experts hold "
                f"{routed_experts / 1e9:.1f}B parameters, and FSDP would all-gather all of them in every layer of "
                f"every step, where expert parallelism sends each token to the device that holds its experts "
                f"(all-to-all); the training state is {state_gb:,.0f} GB ({per_device:,.0f} GB a device sharded "
                f"over {devices_per_node})")
    if per_device > 0.8 * memory_gb:
        return (f"FSDP2 across nodes, or expert parallelism: the training state ({state_gb:,.0f} GB) does not fit "
                f"one node of {devices_per_node} x {memory_gb:.0f} GB when sharded")
    if state_gb > 0.8 * memory_gb:
        return (f"FSDP2 under torchrun (--fsdp true): the training state ({state_gb:,.0f} GB) needs sharding "
                f"({per_device:,.1f} GB a device over {devices_per_node})")
    return f"one process or DDP under torchrun: the training state ({_bytes(state_gb * 1e9)}) fits one device"


def context_lines(layers: int, hidden: int, dec, state_bytes: float, devices: int = 64,
                  memory_gb: float = GPUS["H100 SXM"]["memory_gb"]) -> list[str]:
    """Activation memory of one micro-batch at the run's sequence length, held whole and with gradient
    checkpointing, and the context parallelism each needs on `devices` GPUs of `memory_gb` (the training
    state sharded over all of them, 80% of memory usable)."""
    seq, micro = dec.max_seq_len, dec.micro_batch_size
    unit = seq * micro * hidden * (4 if dec.precision == "fp32" else 2) / 2  # Korthikanti's bytes are 16-bit
    whole = layers * 34 * unit  # flash attention never holds the seq x seq scores
    checkpointed = layers * 2 * unit + 34 * unit  # each layer's input, + one layer's activations while recomputed
    budget = 0.8 * memory_gb * 1e9 - state_bytes / devices

    def cp(held: float) -> int:
        n = 1
        while held / n > budget and n < devices:
            n *= 2
        return n

    def needs(held: float) -> str:
        n = cp(held)
        return "none needed" if n == 1 else f"{n} devices a sequence ({_bytes(held / n)} each)"

    lines = [f"  context           {seq:,} tokens a sequence: activations of a micro-batch {_bytes(whole)} held whole, "
             f"{_bytes(checkpointed)} with gradient_checkpointing (each layer's input + one layer recomputed)",
             f"  context parallel  {'this run (checkpointed)' if dec.gradient_checkpointing else 'this run'}: "
             f"{needs(checkpointed if dec.gradient_checkpointing else whole)}; "
             f"{'held whole' if dec.gradient_checkpointing else 'checkpointed'}: "
             f"{needs(whole if dec.gradient_checkpointing else checkpointed)} (beside the training state sharded over "
             f"{devices} x {memory_gb:.0f} GB, {_bytes(state_bytes / devices)} a device)"]
    if cp(whole) > 1:
        lines.append("  how               attention layers split the sequence (ring attention: Megatron-Core's "
                     "context_parallel_size); Mamba-2 layers split their heads after an all-to-all, each device "
                     "scanning the whole sequence (NeMo AutoModel's Mamba context parallelism), because a scan cannot "
                     "start mid-sequence without the state before it")
    return lines


def decoder_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    return causal_lm_plan(preset, preset_path, overrides, cpu_flops, "decoder")


def sft_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    c = stage_config(preset, "sft", overrides.get("sft"), source=preset_path)
    weights = ", ".join(f"{w.name}={w.weight:g}" for w in c.weights) or "in proportion to their sizes"
    return ["", f"SFT: {c.init_from} on {', '.join(c.inputs)} (sources weighted {weights}), {c.max_steps:,} steps "
                f"of {c.global_batch_size} conversations of at most {c.max_seq_len} tokens, loss on the assistant's "
                f"turns only -> {c.output_dir}/model (a chat model)"]


def eval_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    c = stage_config(preset, "eval", overrides.get("eval"), source=preset_path)
    return ["", f"Evaluation: {len(c.models)} model(s) ({', '.join(c.models)}) on {', '.join(c.tasks)} "
                f"(lm-evaluation-harness, few-shot; docs/eval.md lists the tasks) -> {c.output_dir}"]


def gguf_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    c = stage_config(preset, "gguf", overrides.get("gguf"), source=preset_path)
    more = f", quantized to {', '.join(c.quantize)}" if c.quantize else ""
    return ["", f"GGUF export: {c.model_dir} with llama.cpp's converter as {c.outtype}{more}, checked against "
                f"transformers when llama.cpp's binding is installed, with an Ollama Modelfile -> {c.output_dir}"]


def import_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    c = stage_config(preset, "import_gguf", overrides.get("import_gguf"), source=preset_path)
    more = f", upcycled to {c.upcycle} experts" if c.upcycle else ""
    return ["", f"GGUF import: {' '.join(c.inputs)} dequantized to a Hugging Face folder{more} -> {c.output_dir}"]


def trim_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    c = stage_config(preset, "trim", overrides.get("trim"), source=preset_path)
    return ["", f"Vocabulary trimming: {c.base_dir} keeps the tokens {', '.join(c.corpus_dirs)} use -> {c.output_dir}"]


def extend_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    c = stage_config(preset, "extend", overrides.get("extend"), source=preset_path)
    return ["", f"Vocabulary extension: {c.add:,} Hebrew tokens learned on {c.corpus_dir} (up to "
                f"{c.sample_documents:,} documents), added to {c.base_dir} -> {c.output_dir}"]


def cpt_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    """The curriculum: the decoder's cost lines for the continued model, then each phase's steps and tokens."""
    lines = causal_lm_plan(preset, preset_path, overrides, cpu_flops, "cpt")
    c = stage_config(preset, "cpt", overrides.get("cpt"), source=preset_path)
    from hebrew_lm.cpt.mixture import allocate_steps

    lines.insert(2, f"  curriculum        {c.curriculum}, {c.schedule} schedule; anchor {c.anchor_corpus_dir or 'none'}")
    for n, (p, steps) in enumerate(zip(c.phases, allocate_steps(c.max_steps, [p.share for p in c.phases]))):
        anchor = c.resolved_anchor_share(p)
        what = ", ".join(filter(None, [f"sources {p.sources}" if p.sources else "",
                                        f"{p.difficulty} quantiles {p.quantiles}" if p.difficulty else ""])) or "all documents"
        lines.insert(3 + n, f"  phase {n + 1} {p.name:<10} {steps:,} steps (~{steps * c.global_batch_size * c.max_seq_len * (1 - anchor):,.0f} "
                            f"Hebrew tokens at most), {anchor:.0%} anchor; {what}")
    return lines


def base_config(preset: dict, preset_path: str, overrides: dict, section: str):
    """(the section's config, its base model's transformers config, how the base was found): init_from's
    config.json, or the preset's decoder shape while the base does not exist yet."""
    from transformers import AutoConfig

    from hebrew_lm.decoder.model import decoder_config
    from hebrew_lm.tokenizer.extend import embedding_rows

    dec = stage_config(preset, section, overrides.get(section), source=preset_path)
    if section != "decoder" and not (Path(dec.init_from) / "config.json").is_file() and "decoder" in preset:
        # the base does not exist yet: the preset's decoder stage makes it
        import dataclasses

        from hebrew_lm.decoder.config import DecoderConfig

        known = {f.name for f in dataclasses.fields(DecoderConfig)}
        dec = DecoderConfig(**{**{k: v for k, v in vars(dec).items() if k in known}, "init_from": "",
                               "model": stage_config(preset, "decoder").model})
    if dec.init_from and not (Path(dec.init_from) / "config.json").is_file():
        return dec, None, f"init_from {dec.init_from}"  # another stage of the preset writes it (an import, an SFT's CPT)
    if dec.init_from:
        config = AutoConfig.from_pretrained(dec.init_from)
        name = f"init_from {dec.init_from}"
    else:
        vocab = stage_config(preset, "tokenizer", overrides.get("tokenizer"), source=preset_path).vocab_size \
            if "tokenizer" in preset.get("stages", []) or "tokenizer" in preset else 131_072
        config = decoder_config(dec.model, embedding_rows(vocab), max_position_embeddings=max(4096, dec.max_seq_len))
        name = f"{dec.model} preset"
    return dec, config, name


def causal_lm_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None, section: str) -> list[str]:
    from hebrew_lm.decoder.model import model_shape, parameter_counts

    dec, config, name = base_config(preset, preset_path, overrides, section)
    title = "Decoder" if section == "decoder" else f"Continued pretraining ({section})"
    if config is None:
        return ["", f"{title}: {name} does not exist yet (an earlier stage writes it); its size and cost are planned "
                    f"once it does: {dec.max_steps:,} steps of {dec.global_batch_size:,} sequences of at most "
                    f"{dec.max_seq_len:,} tokens"]
    counts = parameter_counts(config)
    flops_per_token = decoder_flops_per_token(config, counts, dec.max_seq_len)
    tokens_per_step = dec.global_batch_size * dec.max_seq_len
    total_tokens = tokens_per_step * dec.max_steps
    flops = flops_per_token * total_tokens
    shape = model_shape(config)
    experts, top_k = shape.experts, shape.top_k
    state = 16 * counts.total  # fp32 weights and gradients, two AdamW moments
    layers, hidden = len(shape.layer_kinds), shape.hidden
    act_bytes = 4 if dec.precision == "fp32" else 2
    activations = layers * 34 * dec.max_seq_len * dec.micro_batch_size * hidden * act_bytes / 2
    lines = [
        "",
        f"{title}: {name}, {counts.total:,} parameters in total, {counts.active:,} active per token "
        f"({counts.active_without_embeddings:,} without the input and output embeddings)",
        f"  layers            {layers} ({', '.join(f'{shape.layer_kinds.count(k)} {k}' for k in dict.fromkeys(shape.layer_kinds))}), "
        f"hidden {hidden}, vocab {shape.vocab:,}" + (f", {experts} routed experts top-{top_k}" + (
            f" + {shape.shared_experts} shared" if shape.shared_experts else "") if experts else ""),
        f"  tokens per step   {tokens_per_step:,} ({dec.global_batch_size:,} sequences x at most {dec.max_seq_len:,})",
        f"  steps             {dec.max_steps:,} -> up to {total_tokens:,} tokens ({total_tokens / 1e9:,.2f}B)",
        f"  training FLOPs    {flops:.3g} ({flops_per_token:.3g} per token: 6 x active parameters that multiply + "
        f"attention; a dense model of all {counts.total:,} would need {counts.total / counts.active:.1f}x)",
        f"  memory            {_bytes(state)} of weights + gradients + AdamW, every expert's (sharding divides it by "
        f"the devices), + activations of a micro-batch of {dec.micro_batch_size} per device {_bytes(activations)} "
        f"({dec.precision})",
        f"  engine            {engine_for(counts.total, counts.routed_experts, experts, GPUS['H100 SXM']['memory_gb'])}",
        *context_lines(layers, hidden, dec, state),
    ]
    lines += time_estimates(f"{section} training", flops, dec.precision, cpu_flops, (8, 64, 256))
    return lines


def megatron_memory(c, counts, shape) -> float:
    """Bytes a GPU holds in a Megatron run: bf16 weights and fp32 gradients of its share (dense parameters split
    over TP x PP, routed experts over EP x PP), 6 bytes a parameter; the distributed optimizer's fp32 master
    weights and two moments, 12 bytes, split further over the data-parallel ranks (of the dense parameters, and
    of the experts); one micro-batch's activations split over TP x PP (34 x seq x batch x hidden bytes a layer
    in bf16, Korthikanti et al. 2022; no recomputation). An estimate: buffers and fragmentation come on top."""
    world = c.nodes * c.gpus_per_node
    model, experts = c.tensor_parallel * c.pipeline_parallel, c.expert_parallel * c.pipeline_parallel
    state = ((counts.total - counts.routed_experts) / model * (6 + 12 / (world // model))
             + counts.routed_experts / experts * (6 + 12 / (world // experts)))
    return state + len(shape.layer_kinds) * 34 * c.max_seq_len * c.device_batch_size * shape.hidden / model


def megatron_plan(preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
    """The Megatron-Bridge runs of the preset's curriculum: devices, memory per device, then per run its steps,
    tokens, blend, time on H100/H200/B200 and the script that holds its command; then SFT."""
    from hebrew_lm.cpt.mixture import allocate_steps, phase_order
    from hebrew_lm.decoder.model import model_shape, parameter_counts
    from hebrew_lm.megatron.stage import anchor_share
    from hebrew_lm.runs import safe_component

    c = stage_config(preset, "megatron", overrides.get("megatron"), source=preset_path)
    _, config, name = base_config(preset, preset_path, overrides, "megatron")
    counts, shape = parameter_counts(config), model_shape(config)
    world = c.nodes * c.gpus_per_node
    memory = megatron_memory(c, counts, shape)
    gpus = ("H100 SXM", "H200", "B200")
    per_token = decoder_flops_per_token(config, counts, c.max_seq_len)

    def hours(tokens: float) -> str:
        return ", ".join(f"{g.split()[0]} {_duration(per_token * tokens / (world * GPUS[g]['bf16'] * GPU_MFU))}" for g in gpus)

    order = phase_order(c)
    steps = allocate_steps(c.max_steps, [p.share for p in c.phases])
    lines = ["", f"Megatron-Bridge handoff -> {c.output_dir}: {name}, one run per phase (a blend is fixed for a run's "
                 "life), each from the last one's weights; scripts/NN-*.sh hold the commands (RUN.md)",
             f"  devices           {world} GPUs ({c.nodes} x {c.gpus_per_node}): tensor {c.tensor_parallel} x pipeline "
             f"{c.pipeline_parallel}, experts over {c.expert_parallel}, {world // (c.tensor_parallel * c.pipeline_parallel)} "
             f"data-parallel; {c.device_batch_size} sequence(s) a GPU a micro-step; recipe {c.recipe}",
             f"  memory per device {_bytes(memory)} (bf16 weights + fp32 gradients of its share, the distributed "
             "optimizer's 12 bytes a parameter over the data-parallel ranks, one micro-batch's activations); "
             + ", ".join(f"{g.split()[0]} {'fits' if memory / 1e9 < GPUS[g]['memory_gb'] * 0.9 else 'does not fit'}"
                         for g in gpus),
             f"  time              at {GPU_MFU:.0%} of bf16 peak on all {world} GPUs (an assumption, not a measurement)"]
    for n, i in enumerate(order):
        p = c.phases[i]
        anchor, replay = anchor_share(c, i), (p.replay_share if n else 0.0)
        tokens = steps[i] * c.global_batch_size * c.max_seq_len
        lines.append(f"  run {n + 1} {p.name:<10} {steps[i]:,} iterations x {c.global_batch_size:,} x {c.max_seq_len:,} = "
                     f"{tokens:,} tokens; blend: Hebrew {1 - anchor - replay:.0%}" + (f", replay {replay:.0%}" if replay else "")
                     + (f", anchor {anchor:.0%}" if anchor else "") + f"; {hours(tokens)}; "
                     f"scripts/{n + 1:02d}-{safe_component(p.name, 'phase')}.sh")
    if c.sft_inputs:
        tokens = c.sft_steps * c.sft_global_batch_size * c.sft_max_seq_len
        lines.append(f"  run {len(order) + 1} sft        {c.sft_steps:,} iterations x {c.sft_global_batch_size:,} conversations "
                     f"of at most {c.sft_max_seq_len:,} tokens on {', '.join(c.sft_inputs)}; {hours(tokens)} at most; "
                     f"scripts/{len(order) + 1:02d}-sft.sh")
    return lines
