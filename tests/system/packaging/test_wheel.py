"""The wheel a user installs: every module, the config and the migrations inside the package,
the dependencies as users install them. Built once per session (``python -m build``: the
sdist, then the wheel from the sdist, as a user's pip would)."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import soredi_sync
from tests.support.paths import REPO_ROOT

CHECKOUT = REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The build backend comes from the package index (build isolation), as for any user.
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(CHECKOUT)],
        check=True,
        capture_output=True,
        text=True,
    )
    [built] = out.glob("*.whl")
    return built


@pytest.fixture(scope="session")
def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="session")
def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        [path] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(path))


def _files(folder: Path, *patterns: str) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for pattern in patterns
        for p in folder.glob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    }


class TestContents:
    def test_every_config_file_is_inside_the_package(self, names: set[str]) -> None:
        shipped = _files(CHECKOUT / "config", "*.toml", "*.tsv")
        assert {f"soredi_sync/_config/{name}" for name in shipped} <= names
        assert len(shipped) >= 9

    def test_every_migration_is_inside_the_package(self, names: set[str]) -> None:
        shipped = _files(CHECKOUT / "migrations", "*.py", "*.mako", "versions/*.py")
        assert "versions/2026_11_26_0001_initial_schema.py" in shipped
        assert {f"soredi_sync/_migrations/{name}" for name in shipped} <= names

    def test_every_module_and_contract_of_the_checkout_is_in_it(self, names: set[str]) -> None:
        # pyproject.toml lists the packages one by one: a new one must be added there.
        package = CHECKOUT / "soredi_sync"
        shipped = _files(package, "**/*.py", "**/*.wsdl", "**/*.xsd", "py.typed")
        shipped |= _files(package, "ui/templates/*.html", "ui/static/*", "ui/locale/*/*/*.po")
        missing = {f"soredi_sync/{name}" for name in shipped} - names
        assert not missing

    def test_nothing_lands_at_the_top_of_site_packages_but_the_package(
        self, names: set[str]
    ) -> None:
        tops = {name.split("/")[0] for name in names}
        assert {t for t in tops if not t.endswith(".dist-info")} == {"soredi_sync"}


def _requires(metadata: email.message.Message) -> list[str]:
    return metadata.get_all("Requires-Dist") or []


class TestDependencies:
    def test_the_version_is_the_packages(self, metadata: email.message.Message) -> None:
        assert metadata["Version"] == soredi_sync.__version__

    def test_the_postgresql_driver_and_matplotlib_are_extras(
        self, metadata: email.message.Message
    ) -> None:
        requires = _requires(metadata)
        core = [r for r in requires if "extra ==" not in r]
        assert not [r for r in core if r.startswith(("psycopg", "matplotlib"))]
        assert any(r.startswith("psycopg[binary]") and 'extra == "postgres"' in r for r in requires)
        assert any(r.startswith("matplotlib") and 'extra == "plot"' in r for r in requires)
        assert {"postgres", "plot", "test"} <= set(metadata.get_all("Provides-Extra") or [])

    def test_direct_imports_are_declared_and_uvicorn_comes_without_its_standard_extra(
        self, metadata: email.message.Message
    ) -> None:
        core = {
            r.split(";")[0].split(">")[0].split("[")[0].strip().lower()
            for r in _requires(metadata)
            if "extra ==" not in r
        }
        assert {"requests", "starlette", "fastapi", "uvicorn", "httptools"} <= core
        assert not [r for r in _requires(metadata) if r.startswith("uvicorn[")]
        assert not core & {"websockets", "watchfiles", "python-dotenv", "pyyaml"}

    def test_the_test_extra_pulls_what_the_postgresql_and_plot_tests_need(
        self, metadata: email.message.Message
    ) -> None:
        test = [r for r in _requires(metadata) if 'extra == "test"' in r]
        assert any(r.startswith("soredi-sync[plot,postgres]") for r in test)


@pytest.fixture(scope="session")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


# soredi-sync from the unpacked wheel (PYTHONPATH; dependencies from this environment), run
# in an empty folder: the checkout's files are out of reach.
FROM_THE_WHEEL = [sys.executable, "-c", "from soredi_sync.cli import main; main()"]


def _run(command: list[str], unpacked: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SOREDI_")}
    env["PYTHONPATH"] = str(unpacked)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


class TestInstalled:
    def test_the_package_reads_its_config_from_inside_itself(
        self, unpacked: Path, tmp_path: Path
    ) -> None:
        code = (
            "import soredi_sync.config as c; "
            "print(c.config_dir()); print(c.packaged_dir('migrations')); print(c.__file__)"
        )
        done = _run([sys.executable, "-c", code], unpacked, tmp_path)
        assert done.returncode == 0, done.stderr
        config, migrations, module = done.stdout.splitlines()
        assert Path(module).is_relative_to(unpacked)
        assert Path(config) == unpacked / "soredi_sync" / "_config"
        assert Path(migrations) == unpacked / "soredi_sync" / "_migrations"

    def test_migrations_run_and_match_the_models_from_the_package(
        self, unpacked: Path, tmp_path: Path
    ) -> None:
        url = f"sqlite:///{tmp_path / 'wheel.db'}"
        for command in (["db", "upgrade"], ["db", "check"]):
            done = _run([*FROM_THE_WHEEL, "--database-url", url, *command], unpacked, tmp_path)
            assert done.returncode == 0, done.stderr
        assert "models and migrations agree" in done.stdout

    def test_config_init_copies_the_packaged_files(self, unpacked: Path, tmp_path: Path) -> None:
        done = _run([*FROM_THE_WHEEL, "config", "init", "etc"], unpacked, tmp_path)
        assert done.returncode == 0, done.stderr
        shipped = _files(CHECKOUT / "config", "*.toml", "*.tsv")
        assert {p.name for p in (tmp_path / "etc").iterdir()} == shipped
