"""The training engine both tracks share: processes (`dist`), optimizer and schedule (`optim`),
checkpoints with exact resume (`checkpoint`), metrics (`metrics`) and the loop (`loop`).

An objective is a plug-in: a `torch.nn.Module` whose forward takes one micro-batch and returns the
mean loss, holding the model as `.model` and saying which of its layers are FSDP units and which
weights are tied. The masked LM (`hebrew_lm.mlm`) is one; the stage builds the objective, its batches
and its evaluation, and hands them to `loop.train`.
"""
