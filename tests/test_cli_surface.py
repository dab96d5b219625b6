"""The command line as a user meets it: fast help, one spelling per option, one override rule."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
import yaml
from typer.testing import CliRunner

from panollava.cli import app

runner = CliRunner()


def _commands() -> dict:
    """Every leaf command of the CLI by its full name (``baseline blind``, ``data check`` ...)."""
    out: dict = {}

    def walk(cmd, prefix: str) -> None:
        if hasattr(cmd, "commands"):  # a group (typer ships its own click classes)
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            out[prefix] = cmd

    walk(typer.main.get_command(app), "")
    return out


def test_help_of_every_command_imports_neither_torch_nor_matplotlib() -> None:
    """``--help`` stays fast: the command modules import their heavy libraries only when run."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from panollava.cli import app\n"
        "import typer\n"
        "root = typer.main.get_command(app)\n"
        "def names(cmd, prefix=()):\n"
        "    if hasattr(cmd, 'commands'):\n"
        "        for n, sub in cmd.commands.items(): yield from names(sub, (*prefix, n))\n"
        "    else: yield prefix\n"
        "for argv in [(), *names(root)]:\n"
        "    r = CliRunner().invoke(app, [*argv, '--help'])\n"
        "    assert r.exit_code == 0, (argv, r.output)\n"
        "heavy = sorted(m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules)\n"
        "print(len(list(names(root))))\n"
        "print(','.join(heavy)) if heavy else None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert int(lines[0]) >= 18  # every command's help was shown
    assert lines[1:] == []  # and none imported a heavy library


def _option(cmd, name: str):
    return next((p for p in cmd.params if name in p.opts), None)


def test_shared_options_are_spelled_and_defaulted_alike() -> None:
    commands = _commands()
    spellings = {opt for c in commands.values() for p in c.params for opt in p.opts}
    assert "--n-boot" not in spellings and "--set" not in spellings
    for flag in ("--max-new-tokens", "--bootstrap", "--run"):
        found = {name: _option(cmd, flag) for name, cmd in commands.items()}
        defaults = {name: opt.default for name, opt in found.items() if opt is not None}
        assert len(defaults) >= 2, flag
        assert len(set(map(str, defaults.values()))) == 1, (flag, defaults)
    for cmd in commands.values():  # --run-dir exists only as an alias of --run
        for p in cmd.params:
            if "--run-dir" in p.opts:
                assert "--run" in p.opts


@pytest.mark.parametrize(
    "argv",
    [
        ["infer", "--image", "x.jpg", "--query", "q", "--family", "qwen25"],
        ["views", "x.jpg", "--strategy", "anyres_e2"],
        ["positions", "--kind", "2d"],
        ["eval", "--run", "r", "--backend", "vlm"],
    ],
)
def test_choices_are_checked_before_anything_runs(argv: list[str]) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert "Invalid value" in result.output


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("data.test=[small/test.tsv]", "test", ["small/test.tsv"]),
        ("data.test=[/abs/dir/t.tsv]", "test", ["/abs/dir/t.tsv"]),
        ("data.image_root=/data/[x]=y", "image_root", "/data/[x]=y"),
    ],
)
def test_overrides_with_slashes_and_brackets_round_trip_through_config_show(
    override: str, key: str, value: object
) -> None:
    result = runner.invoke(app, ["config", "show", override])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)["data"][key]
    if isinstance(value, list):
        assert [s.split("/")[-1] for s in shown] == [v.split("/")[-1] for v in value]
        assert all(s.endswith(v.lstrip("/")) for s, v in zip(shown, value, strict=True))
    else:
        assert shown.endswith("/data/[x]=y")
