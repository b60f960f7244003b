"""Decoder training throughput on one GPU: tokens/s and MFU of `decoder-small` and `decoder-1b` (1.07B
active of 3.5B), length-bucketed padded batches against packed varlen rows, side by side.

    hebrew-lm run configs/tiny-decoder.yaml --until tokenizer      # the English pieces it trains on
    python bench/decoder_gpu.py --presets decoder-small decoder-1b  # bench/gpu.sh runs this

Both layouts train on the same pieces (documents of the tiny-decoder corpus, at most --seq tokens) in the
same order, step for step, with the chunked causal-LM loss and AdamW, bf16 autocast on CUDA:
- padded: each step's pieces grouped by length (the engine's `SequenceStream`), one right-padded row each;
- packed: the same pieces laid end to end in rows of at most --seq tokens, position ids restarting at each
  document (attention then masks per document) and Mamba-2's `seq_idx` naming each token's document.
Packing is measured only after a check, on this device, that a document's logits are the same packed
after another document as alone: transformers' pure-PyTorch Mamba path ignores `seq_idx` (the state runs
on across documents), so without the mamba-ssm kernels the packed row is reported as leaking, not timed.
MFU = model FLOPs per token (`hebrew_lm.plan.decoder_flops_per_token`) x tokens/s / the measured bf16
matmul peak. Real tokens only: padding is not counted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def pack(pieces: list[torch.Tensor], width: int, pad_id: int):
    """Pieces end to end in rows of at most `width` (first fit, in order): ids, position ids, seq_idx, and
    the loss mask (0 at each document's first token, whose label would cross a boundary, and at padding)."""
    rows: list[list[torch.Tensor]] = []
    for piece in pieces:
        row = next((r for r in rows if sum(len(p) for p in r) + len(piece) <= width), None)
        rows.append([piece]) if row is None else row.append(piece)
    longest = max(sum(len(p) for p in r) for r in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    pos = torch.zeros_like(ids)
    seq = torch.zeros(len(rows), longest, dtype=torch.int32)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        at = 0
        for d, piece in enumerate(row):
            n = len(piece)
            ids[i, at : at + n], pos[i, at : at + n], seq[i, at : at + n] = piece, torch.arange(n), d
            mask[i, at + 1 : at + n] = 1
            at += n
        pos[i, at:], seq[i, at:] = torch.arange(longest - at), len(row)  # padding: a document of its own
    return ids, pos, seq, mask


def packed_hidden(model, ids, pos, seq):
    return model.model(input_ids=ids, position_ids=pos, seq_idx=seq).last_hidden_state


@torch.no_grad()
def packing_leaks(model, device: str) -> float:
    """Largest logit difference of a document packed after another against it alone (0 when packing is exact)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(10, 1000, (37,), generator=g), torch.randint(10, 1000, (29,), generator=g)
    model.eval()
    alone = model.lm_head(model.model(input_ids=b[None].to(device)).last_hidden_state).float()
    ids, pos, seq, _ = pack([a, b], 128, 0)
    packed = model.lm_head(packed_hidden(model, ids.to(device), pos.to(device), seq.to(device))).float()
    model.train()
    return float((packed[0, len(a) : len(a) + len(b)] - alone[0]).abs().max())


def measure(args, preset: str, layout: str, pieces, order, device: str, peak: float) -> dict:
    from hebrew_lm.decoder.data import pad_batch
    from hebrew_lm.decoder.model import decoder_config, parameter_counts
    from hebrew_lm.decoder.objective import CausalLMObjective, chunked_causal_lm_loss
    from hebrew_lm.plan import decoder_flops_per_token

    config = decoder_config(preset, args.vocab, max_position_embeddings=max(4096, args.seq))
    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config).to(device)
    counts = parameter_counts(config)
    row = {"preset": preset, "layout": layout, "active": counts.active, "total": counts.total}
    if layout == "packed":
        leak = packing_leaks(model, device)
        row["packing_leak"] = leak
        if leak > (2e-2 if device == "cuda" else 1e-4):
            row["note"] = "packed documents see each other here (no mamba-ssm seq_idx support): not timed"
            return row
    objective = CausalLMObjective(model, chunk_tokens=4096)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")
    tokens, started = 0, None
    for step in range(args.steps + args.warmup):
        batch = [pieces[i] for i in order[step * args.batch : (step + 1) * args.batch]]
        with autocast:
            if layout == "padded":
                ids, mask = pad_batch(batch, 0)
                loss = objective(ids.to(device), mask.to(device))
            else:
                ids, pos, seq, mask = (t.to(device) for t in pack(batch, args.seq, 0))
                hidden = packed_hidden(model, ids, pos, seq)
                loss = chunked_causal_lm_loss(hidden, model.lm_head, ids, mask, objective.chunk_tokens)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        objective.after_step()
        if step == args.warmup - 1:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        elif step >= args.warmup:
            tokens += sum(len(p) for p in batch)
    if device == "cuda":
        torch.cuda.synchronize()
    tok_s = tokens / (time.perf_counter() - started)
    flops = decoder_flops_per_token(config, counts, args.seq)
    row.update(tokens_per_s=tok_s, mfu=flops * tok_s / peak, loss=float(loss),
               peak_memory_gib=torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default="runs/tiny-decoder")
    parser.add_argument("--presets", nargs="+", default=["decoder-small", "decoder-1b"])
    parser.add_argument("--vocab", type=int, default=131_072)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=16, help="pieces per step")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="", help="append the rows as JSON lines here")
    args = parser.parse_args()

    from hebrew_lm.decoder.data import DocumentPieces
    from hebrew_lm.plan import measured_matmul_flops
    from hebrew_lm.engine.token_store import build_token_store
    from hebrew_lm.engine.stream import SequenceStream

    run_dir = Path(args.run_dir)
    if not (run_dir / "tokenizer" / "_SUCCESS").is_file():
        raise SystemExit(f"{run_dir}: run `hebrew-lm run configs/tiny-decoder.yaml --until tokenizer` first")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = DocumentPieces(build_token_store(run_dir / "corpus", run_dir / "tokenizer", "train", run_dir / "cache"),
                          args.seq)
    count = (args.steps + args.warmup) * args.batch
    order = SequenceStream(len(data), 0, data.lengths(), args.batch).indices(0, count)
    pieces = {i: data[i] for i in set(order)}
    peak = measured_matmul_flops(device, "bf16" if device == "cuda" else "fp32")
    print(f"{device}, matmul peak {peak / 1e12:.1f} TFLOP/s, {args.batch} pieces a step (mean "
          f"{sum(len(pieces[i]) for i in order) / len(order):.0f} tokens, at most {args.seq}), vocab {args.vocab:,}")
    print("| preset | active / total | layout | tok/s | MFU | peak GiB | note |\n|---|---|---|---:|---:|---:|---|")
    for preset in args.presets:
        for layout in ("padded", "packed"):
            try:
                row = measure(args, preset, layout, pieces, order, device, peak)
            except torch.OutOfMemoryError as e:  # say so, and go on to the next row
                row = {"preset": preset, "layout": layout, "note": f"out of memory: {str(e)[:120]}"}
                torch.cuda.empty_cache()
            tok = f"{row['tokens_per_s']:,.0f}" if "tokens_per_s" in row else "-"
            mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
            mem = f"{row['peak_memory_gib']:.1f}" if row.get("peak_memory_gib") else "-"
            size = f"{row['active'] / 1e9:.2f}B / {row['total'] / 1e9:.2f}B" if "active" in row else "-"
            print(f"| `{preset}` | {size} | {layout} | {tok} | {mfu} | {mem} | {row.get('note', '')} |", flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
