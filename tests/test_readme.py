"""The README's command examples cannot drift: every `fhs-bulk ...` line in its sh and cron blocks names
commands and options that exist and parse (the Quick start and the Python example run for real in
tests/test_api.py and .ci/run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from fhs_bulk.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def example_lines() -> list[str]:
    out = []
    for _lang, body in re.findall(r"```(sh|cron)\n(.*?)```", README, re.S):
        text = re.sub(r"\\\n\s*", " ", body)  # join continued lines
        for line in text.splitlines():
            if "fhs-bulk " not in line or "_COMPLETE=" in line:
                continue
            cmd = line[line.index("fhs-bulk "):]
            cmd = re.sub(r"\$\([^)]*\)", "X", cmd)  # $(date +%F) and the like
            cmd = re.split(r"\s(?:\|\||&&|\||;|#|>)\s|\s&$|\s&\s", cmd)[0]
            out.append(cmd.strip())
    return out


@pytest.mark.parametrize("line", example_lines())
def test_example_parses(line: str) -> None:
    try:
        _parse(line)
    except click.BadParameter as exc:  # a file the example names need not exist here
        assert "does not exist" in str(exc), (line, exc)


def _parse(line: str) -> None:
    args = shlex.split(line)[1:]
    command: click.Command = main
    ctx = main.make_context("fhs-bulk", list(args), resilient_parsing=False)
    rest = ctx.protected_args + ctx.args
    while isinstance(command, click.Group) and rest:
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]!r} in: {line}"
        command = sub
        ctx = command.make_context(rest[0], rest[1:], parent=ctx, resilient_parsing=False)
        rest = (ctx.protected_args + ctx.args) if isinstance(command, click.Group) else []


def test_there_are_examples() -> None:
    lines = example_lines()
    assert len(lines) > 15 and any(x.startswith("fhs-bulk upload") for x in lines)
