"""Presets: a YAML file with `run_dir`, `stages` and one section per stage, read and checked against the
stage registry, and one stage's config resolved from it (section, then RUN_DIR defaults, then flags).

    preset = load_preset("configs/tiny.yaml")
    config = stage_config(preset, "pretrain", {"max_steps": 600})
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from hebrew_lm.config import from_dict, set_dotted
from hebrew_lm.stages import DEFAULT_STAGES, STAGE_CONFIGS


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently).
    A merge key (`<<: *cpt`) is YAML's way to reuse a section; the mapping's own keys may override it."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first at line {seen[key]})", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_preset(path: str | Path) -> dict[str, Any]:
    """Read a preset YAML file; a missing file or bad YAML is a ValueError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{at}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a preset must be a mapping with run_dir, stages and one section per stage")
    # A section with `stage: KIND` is another instance of that stage (a second corpus, say), named by its key.
    instances = {k: v["stage"] for k, v in data.items() if isinstance(v, dict) and "stage" in v}
    for name, kind in instances.items():
        if kind not in STAGE_CONFIGS or name in STAGE_CONFIGS:
            raise ValueError(f"{path}: section {name!r}: `stage: {kind}` must name a stage ({', '.join(STAGE_CONFIGS)}) "
                             "and the section's own name must not be one")
    unknown = set(data) - {"run_dir", "stages", "description"} - set(STAGE_CONFIGS) - set(instances)
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; expected run_dir, stages, description "
            f"or a stage section ({', '.join(STAGE_CONFIGS)})"
        )
    stages = data.get("stages", DEFAULT_STAGES)
    if not isinstance(stages, list) or any(s not in STAGE_CONFIGS and s not in instances for s in stages):
        raise ValueError(f"{path}: `stages` must be a list drawn from {list(STAGE_CONFIGS)} and the preset's "
                         f"`stage:` sections, got {stages!r}")
    data["stages"] = stages
    data["kinds"] = {**{name: name for name in STAGE_CONFIGS}, **instances}
    return data


def stage_config(preset: dict[str, Any], stage: str, overrides: dict[str, Any] | None = None,
                 source: str = "config") -> Any:
    """Resolve one stage's config: preset section, then RUN_DIR defaults for paths, then flag overrides."""
    kind = preset.get("kinds", {}).get(stage, stage)
    cls = STAGE_CONFIGS[kind]
    section = dict(preset.get(stage) or {})
    if not isinstance(preset.get(stage) or {}, dict):
        raise ValueError(f"{source}: section '{stage}' must be a mapping")
    section.pop("stage", None)
    run_dir = preset.get("run_dir")
    for key, sub in getattr(cls, "RUN_DIR_DEFAULTS", {}).items():
        if key == "output_dir":
            sub = stage  # every stage's folder is RUN_DIR/<its name in the preset>
        if not section.get(key) and run_dir:
            section[key] = [str(Path(run_dir) / s) for s in sub] if isinstance(sub, list) else str(Path(run_dir) / sub)
    fields = {f.name for f in dataclasses.fields(cls)}
    if "stages" in fields and "stages" not in section and "stages" in preset:
        # a stage about the others (the report) reports the preset's stages, an instance as `name=stage`
        kinds = preset.get("kinds", {})
        section["stages"] = [s if s in STAGE_CONFIGS else f"{s}={kinds[s]}" for s in preset["stages"]
                             if s in STAGE_CONFIGS or s in kinds]
    if "folders" in fields and "folders" not in section:  # ... and finds the folders a preset moved elsewhere
        section["folders"] = {s: preset[s]["output_dir"] for s in preset.get("stages", [])
                              if isinstance(preset.get(s), dict) and preset[s].get("output_dir")}
    for dotted, value in (overrides or {}).items():
        set_dotted(section, dotted, value)
    return from_dict(cls, section, f"{source}: {stage}")
