"""Check the Megatron-Bridge facts the launch scripts rely on against the sources at the pinned commits.

    python scripts/check_megatron_bridge.py --bridge ~/src/Megatron-Bridge --megatron-lm ~/src/Megatron-LM

Megatron-Bridge needs Python >= 3.12 and CUDA, so the scripts' keys cannot be checked by importing it here.
Instead each KEY of hebrew_lm.megatron.launch's OVERRIDE_KEYS and SFT_OVERRIDE_KEYS names the repository,
file and dataclass that declare it; this reads those files at BRIDGE_COMMIT and MEGATRON_LM_COMMIT (git
show, from clones that have the commits), finds the class with Python's own parser and checks that the
field is declared in it or in a base class of the same file, and checks the recipes the scripts name and
the flags they pass to run_recipe.py and convert.sh. Prints one line a fact; exits 1 if any is missing.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys

from hebrew_lm.megatron.config import MegatronConfig
from hebrew_lm.megatron.launch import (BRIDGE_COMMIT, MEGATRON_LM_COMMIT, OVERRIDE_KEYS, RECIPE_FILE, SFT_OVERRIDE_KEYS,
                                       TOOLS)


def source(repos: dict[str, tuple[str, str]], repo: str, path: str) -> str:
    folder, commit = repos[repo]
    return subprocess.run(["git", "-C", folder, "show", f"{commit}:{path}"], capture_output=True, text=True,
                          check=True).stdout


def declared(text: str, cls: str, field: str) -> bool:
    """`field` annotated in class `cls` of `text`, or in one of its bases defined in the same text."""
    classes = {node.name: node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ClassDef)}
    todo, seen = [cls], set()
    while todo:
        node = classes.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if any(isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.target.id == field for s in node.body):
            return True
        todo += [b.id for b in node.bases if isinstance(b, ast.Name)]
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridge", required=True, help="a git clone of NVIDIA-NeMo/Megatron-Bridge")
    parser.add_argument("--megatron-lm", required=True, help="a git clone of NVIDIA/Megatron-LM")
    args = parser.parse_args()
    repos = {"Megatron-Bridge": (args.bridge, BRIDGE_COMMIT), "Megatron-LM": (args.megatron_lm, MEGATRON_LM_COMMIT)}
    missing = 0
    facts = sorted({(key, *where) for table in (OVERRIDE_KEYS, SFT_OVERRIDE_KEYS) for key, where in table.items()})
    for key, repo, path, cls in facts:
        ok = declared(source(repos, repo, path), cls, key.split(".", 1)[1])
        missing += not ok
        print(f"{'ok     ' if ok else 'MISSING'} {key:<45} {repo}:{path} {cls}")
    recipes = source(repos, *RECIPE_FILE)
    defaults = {f.name: f.default for f in MegatronConfig.__dataclass_fields__.values() if f.name in ("recipe", "sft_recipe")}
    for name in defaults.values():
        ok = f"def {name}(" in recipes
        missing += not ok
        print(f"{'ok     ' if ok else 'MISSING'} recipe {name:<38} {RECIPE_FILE[1]}")
    flags = {TOOLS["run_recipe"]: ["--recipe", "--mode"],
             "scripts/conversion/arguments.py": ["--hf-model", "--megatron-path", "--hf-path", "--executor", "--device"]}
    for path, names in flags.items():
        text = source(repos, "Megatron-Bridge", path)
        for flag in names:
            ok = f'"{flag}"' in text
            missing += not ok
            print(f"{'ok     ' if ok else 'MISSING'} flag {flag:<40} {path}")
    for path in (TOOLS["run_recipe"], TOOLS["convert"]):
        source(repos, "Megatron-Bridge", path)  # exists at the commit, or git show fails
    print(f"{missing} missing" if missing else "every fact holds at the pinned commits")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
