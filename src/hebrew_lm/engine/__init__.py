"""The training engine both tracks share: processes (`dist`), optimizer and schedule (`optim`),
checkpoints with exact resume (`checkpoint`), metrics (`metrics`), the loop (`loop`), the token store and
streams training reads (`token_store`, `stream`), the run folder around the loop (`folder`), and the one
training-stage runner (`runner`) every training stage hands its objective and data to.

An objective is a plug-in: a `torch.nn.Module` whose forward takes one micro-batch and returns the
mean loss, holding the model as `.model` and saying which of its layers are FSDP units and which
weights are tied. The masked LM (`hebrew_lm.mlm.model`) and the causal LM (`hebrew_lm.decoder.objective`)
are two; a new objective is one module, handed to the runner by its stage.
"""
