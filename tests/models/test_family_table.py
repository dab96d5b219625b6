"""The family table is the one source of family facts (issue #13): every field is read, the
schema, tiny stand-ins, loading and the recipe generator take their facts from it."""

import dataclasses
import importlib.util
import re
from pathlib import Path
from typing import get_args

import pytest

from panollava.models.adapters.schema import (
    FAMILIES,
    FAMILY_NAMES,
    Family,
    FamilyFacts,
    PanoAdaptConfig,
)

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "panollava"
GENERATE = REPO / "configs" / "panoadapt" / "generate.py"
TABLE = SRC / "models" / "adapters" / "schema.py"  # the table and the config schema
# The per-family adapter files (one per family, named by the table) may name their family.
ADAPTER_FILES = {TABLE.parent / f"{f.tiny_module}.py" for f in FAMILIES.values()}


def _readers() -> dict[Path, str]:
    files = [p for p in SRC.rglob("*.py") if p != TABLE] + [GENERATE]
    return {p: p.read_text() for p in files}


def test_every_table_field_is_read():
    """Each field is read outside the table, or by the table's own methods (``self.field``)."""
    texts = list(_readers().values())
    own = TABLE.read_text()
    names = [f.name for f in dataclasses.fields(FamilyFacts)] + ["lora_groups"]
    unread = [
        n
        for n in names
        if not any(re.search(rf"\.{n}\b", t) for t in texts) and f"self.{n}" not in own
    ]
    assert not unread, f"family table fields nobody reads: {unread}"


def test_no_family_fact_is_copied_outside_the_table():
    """Family names and checkpoints: only in the table and each family's adapter file within
    the adapters, tiny stand-ins, loading and the recipe generator; no family list in CLI help."""
    names = [f'"{n}"' for n in FAMILIES] + [f.default_checkpoint for f in FAMILIES.values()]
    # arch.py is the other table (published architectures, one row per checkpoint): its rows name
    # their family as a key into this table and their checkpoint as the row's identity.
    arch_table = TABLE.parent / "arch.py"
    scope = [p for p in TABLE.parent.glob("*.py") if p not in ADAPTER_FILES | {TABLE, arch_table}]
    texts = {p: p.read_text() for p in scope}
    texts[GENERATE] = re.sub(r"COMPARISON_FAMILY = .*", "", GENERATE.read_text())
    copies = [(p.name, fact) for p, t in texts.items() for fact in names if fact in t]
    assert not copies, copies
    listed = ", ".join(sorted(FAMILIES))
    family_list = re.compile(r"(" + "|".join(FAMILIES) + r")(, (" + "|".join(FAMILIES) + r")){2,}")
    in_help = [p.name for p, t in _readers().items() if family_list.search(t)]
    assert not in_help, f"family lists written out (not from the table, {listed}): {in_help}"


def test_schema_family_list_and_default_checkpoint_come_from_the_table():
    assert get_args(Family) == FAMILY_NAMES
    for name, facts in FAMILIES.items():
        assert PanoAdaptConfig(family=name).resolved_checkpoint() == facts.default_checkpoint
    with pytest.raises(ValueError, match="gemma3"):
        PanoAdaptConfig(family="llava")


def test_generate_reproduces_configs_panoadapt(tmp_path):
    spec = importlib.util.spec_from_file_location("panoadapt_generate", GENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    committed = {p.name: p.read_text() for p in GENERATE.parent.glob("*.yaml")}
    made = {p.name: p.read_text() for p in tmp_path.glob("*.yaml")}
    assert sorted(made) == sorted(committed)
    stale = [name for name in made if made[name] != committed[name]]
    assert not stale, f"rerun configs/panoadapt/generate.py: {stale} differ"
    for facts in FAMILIES.values():
        if facts.recipe_name:
            text = made[f"{facts.recipe_name}_anyres_e2p.yaml"]
            assert f"tile_size: {facts.native_size}" in text and f"family: {facts.name}" in text
