"""``panollava arch TARGET``: a target checkpoint's real architecture inspected on the meta device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def _print_report(report: dict) -> None:
    out = typer.echo
    pub = report["published_params"]
    out(f"{report['target']}  ({report['checkpoint']})")
    out(
        f"  total parameters   {report['total_params']:>15,}  "
        f"(published {pub / 1e9:.3g}B: {report['published_source']})"
    )
    if "lora" not in report:
        return
    for stage in report["lora"]:
        out(
            f"  LoRA stage {stage['stage']!r} r={stage['r']}: {stage['trainable_params']:,} "
            f"trainable ({stage['trainable_percent']:.2f}%)"
        )
        for m in stage["targets"]:
            mods = m["modules"]
            out(
                f"    {m['target']:<10} {m['params']:>12,} ({m['percent']:.2f}%)  matches "
                f"{mods['llm']} LLM + {mods['vision']} vision + {mods['other']} other Linear  "
                f"[{m['pattern']}]"
            )
    h, w = report["view_size"]
    out(f"  image tokens/view  {report['tokens_per_view']:>6}  at {h}x{w} ({report['strategy']})")
    out(
        f"  prompt tokens      {report['prompt_tokens']:>6}  ({report['views']} views + "
        f"{report['prompt_query']!r}; text counted with a word-level stand-in tokenizer)"
    )
    out(f"  image token id     {report['image_token_id']:>6}")


def arch_command(
    target: Annotated[
        str | None,
        typer.Argument(
            help="Row key (qwen2_5_vl_3b, internvl3_5_2b, gemma3_4b, ...), hub id or family; "
            "omit with --recipe to use the recipe's checkpoint."
        ),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option(help="Training YAML: its LoRA stages and view size.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Print parameters, LoRA coverage per target and image-token counts of TARGET's real
    architecture (random weights on the meta device: offline, seconds)."""
    from panollava.cli_support import fail, load_config_or_fail, user_errors
    from panollava.models.adapters.arch import ARCH, arch_for_checkpoint, get_arch
    from panollava.models.adapters.arch_report import arch_report

    cfg = load_config_or_fail(recipe) if recipe is not None else None
    if cfg is not None and getattr(cfg.model, "system", None) != "panoadapt":
        fail(f"{recipe}: --recipe must be a PanoAdapt recipe (model.system: panoadapt)")
    if target is None and cfg is None:
        fail(f"give a TARGET ({', '.join(ARCH)}) or --recipe")
    with user_errors(ValueError):
        if cfg is not None:
            name = target or cfg.model.checkpoint
            row = arch_for_checkpoint(cfg.model.family, name)
        else:
            row = get_arch(target)
        report = arch_report(row, cfg)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)


def register(app: typer.Typer) -> None:
    app.command("arch")(arch_command)
