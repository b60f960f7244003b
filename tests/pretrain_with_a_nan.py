"""`python tests/pretrain_with_a_nan.py CALL CONFIG`: `hebrew-lm pretrain CONFIG` in which the CALL-th
masked-LM forward of each process returns NaN. For launching the spike test under torchrun, where
pytest's monkeypatch cannot reach the worker processes."""

import sys

from hebrew_lm.cli import main
from hebrew_lm.mlm import stage as train

fault_at = int(sys.argv[1])
original = train.MaskedLMObjective.forward
calls = 0


def forward_with_a_fault(self, *args):
    global calls
    calls += 1
    loss = original(self, *args)
    return loss * float("nan") if calls == fault_at else loss


train.MaskedLMObjective.forward = forward_with_a_fault
raise SystemExit(main(["pretrain", *sys.argv[2:]]))
