"""Shell completion as README.md sets it up: the installed ``soredi-sync`` script, sourced in bash.

The environment variable click reads is derived from the program name, so these run the real
entry point (not ``CliRunner``): a renamed script or a changed variable would break the README's
lines without any other test noticing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY_POINT = Path(sys.executable).with_name("soredi-sync")
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(
    not ENTRY_POINT.is_file(), reason=f"no installed entry point at {ENTRY_POINT}"
)


def complete(words: str, cword: int) -> list[str]:
    """What the entry point offers for the word at ``cword`` (bash protocol: type,value)."""
    env = {
        **os.environ,
        "_SOREDI_SYNC_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    result = subprocess.run(
        [str(ENTRY_POINT)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return [line.partition(",")[2] for line in result.stdout.splitlines()]


class TestShellCompletion:
    def test_the_entry_point_completes_commands_options_and_choices(self) -> None:
        assert "demo" in complete("soredi-sync de", 1)
        assert complete("soredi-sync plan su", 2) == ["submit"]
        assert "--keep" in complete("soredi-sync demo --", 2)
        assert complete("soredi-sync demo --profile ", 3) == ["tiny", "small"]

    @pytest.mark.skipif(BASH is None, reason="bash is not installed")
    def test_the_readme_line_for_bash_registers_a_working_completion(self) -> None:
        script = f"""
            export PATH={ENTRY_POINT.parent}:$PATH
            eval "$(_SOREDI_SYNC_COMPLETE=bash_source soredi-sync)"
            complete -p soredi-sync
            COMP_WORDS=(soredi-sync plan ""); COMP_CWORD=2
            _soredi_sync_completion soredi-sync
            echo "offered: ${{COMPREPLY[*]}}"
        """
        assert BASH is not None
        result = subprocess.run(
            [BASH, "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
        assert "-F _soredi_sync_completion soredi-sync" in result.stdout
        offered = result.stdout.split("offered: ", 1)[1].split()
        assert {"create", "show", "submit", "verify"} <= set(offered)


# What a command imports when it runs, not before: help and completion answer without them.
HEAVY = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "httpx", "zeep", "lxml", "apscheduler")


@pytest.mark.parametrize("args", [["--help"], ["sync", "--help"], ["webhook", "add", "--help"]])
def test_help_loads_no_database_web_or_soap_library(args: list[str]) -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from soredi_sync.cli import cli\n"
        f"result = CliRunner().invoke(cli, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == []
