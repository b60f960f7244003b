"""The causal-LM objective on the shared engine: next-token cross-entropy computed in chunks of the
sequence (the [batch, seq, vocab] logits never exist whole), over right-padded batches whose padding is
masked out, and aux-loss-free router balancing for MoE layers with a correction bias (NemotronH,
DeepSeek-V3): after each optimizer step the bias of every expert that got more than its share of tokens
goes down by `rate`, the bias of every expert that got less goes up (`bias += rate * sign(mean - load)`).
Families trained with an auxiliary load-balancing loss instead (Qwen3-MoE, OLMoE, Mixtral: their config
has `router_aux_loss_coef`) get that loss added with their coefficient, computed by the family's own
`load_balancing_loss_func` over real tokens, exactly as `model(..., labels=..., output_router_logits=True)`.
Expert load is counted for every family from its routers' choices.

    objective = CausalLMObjective(model, chunk_tokens=1024, balance_rate=1e-3)
    loss = objective(input_ids, attention_mask)       # the engine calls this per micro-batch
    loss = objective(input_ids, attention_mask, loss_mask)   # SFT: only the assistant's tokens predicted
    objective.after_step()                            # ... and this after each optimizer step
    objective.expert_load()                           # per layer: each expert's share of the tokens
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F


def chunked_causal_lm_loss(hidden: torch.Tensor, lm_head: torch.nn.Linear, input_ids: torch.Tensor,
                           attention_mask: torch.Tensor | None, chunk_tokens: int,
                           loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over real (unpadded) positions, projecting `chunk_tokens` positions
    onto the vocabulary at a time (`LinearCrossEntropy`). hidden: B,T,H; input_ids and attention_mask: B,T.
    `loss_mask` (B,T), when given, names the tokens that are predicted at all (SFT: the assistant's)."""
    labels = input_ids[:, 1:]  # B,T-1: position t predicts token t+1
    valid = predicted(input_ids, attention_mask, loss_mask)
    total = LinearCrossEntropy.apply(hidden[:, :-1][valid], lm_head.weight, lm_head.bias, labels[valid], chunk_tokens)
    return total / valid.sum().clamp(min=1)


def predicted(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """B,T-1: whether position t's next token is predicted (real, and in `loss_mask` when given)."""
    valid = torch.ones_like(input_ids[:, 1:], dtype=torch.bool) if attention_mask is None else attention_mask[:, 1:].bool()
    return valid & loss_mask[:, 1:].bool() if loss_mask is not None else valid


class LinearCrossEntropy(torch.autograd.Function):
    """sum(cross_entropy(hidden @ weight.T + bias, labels)) over N positions, `chunk` positions at a time,
    each chunk's gradients taken in the forward pass, so no chunk's logits outlive it (the fused linear
    cross-entropy of Liger and torchtune). Plain chunking is not enough: cross-entropy keeps its input for
    backward, so every chunk's logits would live until then and the whole [N, vocabulary] tensor with them.
    Gradients come out of the forward pass at the cost of holding one weight-sized gradient buffer."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, chunk: int):
        want_grad = any(ctx.needs_input_grad[:3])
        grad_hidden = torch.empty_like(hidden) if want_grad else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if want_grad else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if want_grad and bias is not None else None
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[0], chunk):
            h, y = hidden[start : start + chunk], labels[start : start + chunk]
            logits = F.linear(h, weight, bias).float()  # chunk,V
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, y[:, None]).squeeze(1)).sum()
            if want_grad:  # d(sum of losses)/d(logits) = softmax - one-hot; matmuls in autocast's precision
                g = torch.exp(logits - lse[:, None])
                g[torch.arange(len(y), device=y.device), y] -= 1
                grad_hidden[start : start + chunk] = g @ weight
                grad_weight += (g.T @ h).float()
                if grad_bias is not None:
                    grad_bias += g.sum(0)
        ctx.weight_dtype = weight.dtype
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return (grad_hidden * grad_total, (grad_weight * grad_total).to(ctx.weight_dtype),
                None if grad_bias is None else (grad_bias * grad_total).to(ctx.weight_dtype), None, None)


class CausalLMObjective(torch.nn.Module):
    """A causal LM with `chunked_causal_lm_loss` as its forward, for the engine (DDP, FSDP, compile)."""

    def __init__(self, model, chunk_tokens: int = 0, balance_rate: float = 1e-3) -> None:
        super().__init__()
        self.model = model
        if not isinstance(model.lm_head, torch.nn.Linear) or getattr(model.config, "final_logit_softcapping", None):
            raise ValueError(f"{type(model).__name__}: the causal-LM loss needs a plain linear output head "
                             "(no logit soft-capping or scaling)")
        # 0: chunks of 256 MiB of fp32 logits (2**26 values)
        self.chunk_tokens = chunk_tokens or max(64, 2**26 // model.lm_head.out_features)
        self.balance_rate = balance_rate
        self.tied_keys = ("lm_head.weight",) if getattr(model.config, "tie_word_embeddings", False) else ()
        # A router (NemotronH, Qwen3-MoE, OLMoE, Mixtral alike) has `top_k` and returns (logits, weights, expert indices).
        self.routers = [m for m in model.modules() if type(m).__name__.lower().endswith("router") and hasattr(m, "top_k")]
        self._counts = [torch.zeros(r.weight.shape[0], dtype=torch.float64, device=r.weight.device) for r in self.routers]
        self.aux_loss_coef = float(getattr(model.config, "router_aux_loss_coef", 0.0) or 0.0) if self.routers else 0.0
        self._aux_loss = getattr(sys.modules[type(model).__module__], "load_balancing_loss_func", None)
        if self.aux_loss_coef and self._aux_loss is None:
            raise ValueError(f"{type(model).__name__} has router_aux_loss_coef but its module has no load_balancing_loss_func")
        self._mask: torch.Tensor | None = None
        self.last_load: list[torch.Tensor] = []  # each MoE layer's expert shares at the last after_step
        for i, router in enumerate(self.routers):
            router.register_forward_hook(self._counter(i))

    def _counter(self, i: int):
        def hook(module, args, output) -> None:
            if not module.training:  # validation, or generation with the trained model: not training load
                return
            indices = output[2]  # tokens,top_k: the experts each token was sent to
            if self._mask is not None:
                indices = indices[self._mask.reshape(-1)]
            self._counts[i] += torch.bincount(indices.reshape(-1), minlength=self._counts[i].numel()).double()
        return hook

    def fsdp_units(self) -> list[torch.nn.Module]:
        return list(self.model.model.layers)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        self._mask = None if attention_mask is None else attention_mask.bool()
        extra = {"output_router_logits": True} if self.aux_loss_coef else {}
        out = self.model.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        loss = chunked_causal_lm_loss(out.last_hidden_state, self.model.lm_head, input_ids, attention_mask,
                                      self.chunk_tokens, loss_mask)
        if self.aux_loss_coef:
            router = self.routers[0]
            aux = self._aux_loss(out.router_logits, router.weight.shape[0], router.top_k, attention_mask)
            loss = loss + self.aux_loss_coef * aux.to(loss.device)
        return loss

    @staticmethod
    def count_targets(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      loss_mask: torch.Tensor | None = None) -> int:
        """The tokens a micro-batch predicts (the engine weighs micro-batches by them): the positions
        `chunked_causal_lm_loss` averages over."""
        return int(predicted(input_ids, attention_mask, loss_mask).sum())

    def balancing(self) -> str:
        """How this model's experts are kept balanced, in words (for the stats and the model card)."""
        if not self.routers:
            return "none (a dense model)"
        if self.aux_loss_coef:
            return f"auxiliary load-balancing loss, coefficient {self.aux_loss_coef:g}"
        if any(hasattr(r, "e_score_correction_bias") for r in self.routers) and self.balance_rate > 0:
            return f"router correction bias, rate {self.balance_rate:g} (aux-loss-free)"
        return "none"

    def expert_load(self) -> list[torch.Tensor]:
        """Per MoE layer, each expert's share of the routed tokens since the last `after_step`."""
        return [c / c.sum().clamp(min=1) for c in self._counts]

    @torch.no_grad()
    def after_step(self) -> dict[str, float]:
        """Move each router's correction bias toward balanced load; returns the step's load metrics
        (max/mean load over layers, dead experts) and resets the counts."""
        if not self.routers:  # a dense model: no load to report
            return {}
        stats = {"max_over_mean_load": 0.0, "dead_experts": 0}
        if torch.distributed.is_initialized():  # every process moves the bias by the global load, alike
            for counts in self._counts:
                torch.distributed.all_reduce(counts)
        self.last_load = [c.cpu() / c.sum().clamp(min=1).cpu() for c in self._counts]
        for router, counts in zip(self.routers, self._counts):
            if counts.sum() == 0:
                continue
            mean = counts.mean()
            stats["max_over_mean_load"] = max(stats["max_over_mean_load"], float(counts.max() / mean))
            stats["dead_experts"] += int((counts == 0).sum())
            if self.balance_rate > 0 and hasattr(router, "e_score_correction_bias"):
                bias = router.e_score_correction_bias
                bias += self.balance_rate * torch.sign(mean - counts).to(bias.device, bias.dtype)
            counts.zero_()
        return stats
