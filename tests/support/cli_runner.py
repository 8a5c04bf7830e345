"""``soredi-sync`` run in this process, for tests: the ``cli`` fixture (tests/fixtures/cli.py)
gives one on the test's database; a module-scoped fixture may build its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from click.testing import CliRunner, Result

from soredi_sync.cli import cli as soredi_sync


@dataclass(frozen=True)
class Cli:
    """``soredi-sync`` run in this process (click's ``CliRunner``), on one database.

    ``cli("sync", "--from-dir", day)`` runs ``soredi-sync --database-url URL sync --from-dir day``
    and asserts its exit code; ``--database-url`` is left out when there is no URL.
    """

    database_url: str | None = None

    def __call__(
        self,
        *args: str,
        expect: int | None = 0,
        env: Mapping[str, str] | None = None,
        catch_exceptions: bool = False,
    ) -> Result:
        """Run the command line ``args``.

        :param expect: the exit code it must end with; None: any (the caller looks)
        :param env: environment variables for this run only
        :param catch_exceptions: True: an exception becomes ``result.exception`` and exit code 1
            instead of failing the test with its traceback
        """
        database = ["--database-url", self.database_url] if self.database_url else []
        result = CliRunner().invoke(
            soredi_sync, [*database, *args], env=env, catch_exceptions=catch_exceptions
        )
        if expect is not None:
            assert result.exit_code == expect, (result.output, result.exception)
        return result

    def on(self, database_url: str) -> Cli:
        """The same command line on another database."""
        return Cli(database_url)
