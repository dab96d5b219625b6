"""Errors and reports print user text (paths, URLs, messages) verbatim, never as rich markup."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from panollava.cli import app
from panollava.cli_support import fail


@pytest.mark.parametrize("name", ["[/x]", "[red]", "a[bold]b[/bold]"])
def test_error_message_prints_brackets_of_user_text_verbatim(capsys, name):
    """A `[/x]` used to raise MarkupError (hiding the real error); `[red]` vanished."""
    with pytest.raises(typer.Exit) as exit_info:
        fail(f"/data/{name}/train.tsv: annotation file not found")
    assert exit_info.value.exit_code == 2
    assert f"/data/{name}/train.tsv: annotation file not found" in capsys.readouterr().err


def test_data_check_names_a_missing_file_with_brackets_as_it_is(tmp_path):
    missing = tmp_path / "[red]x[/x]" / "train.tsv"
    result = CliRunner().invoke(app, ["data", "check", str(missing)])
    assert result.exit_code == 2, result.output
    assert "[red]x[/x]" in result.output.replace("\n", "")
    assert "MarkupError" not in result.output


def test_data_check_report_shows_bracketed_image_paths_verbatim(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("url\tquery\tannotation\n[red]pano[/x].jpg\tq\ta\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["data", "check", str(table)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "[red]pano[/x].jpg" in result.output
