"""Keeps the shape of the code true: dependencies point one way, every command has help."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from archive.cli import cli

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("archive", "ingest", "iiif", "search", "web")
# What each package may import among ours (docs/architecture.md draws the same).
ALLOWED = {
    "archive": {"archive"},
    "ingest": {"archive", "ingest"},
    "iiif": {"archive", "iiif"},
    "search": {"archive", "search"},
    "web": {"archive", "iiif", "search", "web"},
}
# The CLI is the one place that wires the packages together.
WIRING = {REPO / "archive" / "cli.py"}
# Heavy libraries stay in the modules that use them.
HEAVY = {
    "pyvips": {"ingest", "iiif"},
    "elasticsearch": {"search"},
    "opensearchpy": {"search"},
    "flask": {"web", "iiif"},
    "boto3": {"archive"},  # archive/storage_s3.py only, imported when storage_url is s3://
    "botocore": {"archive"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def package_modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield package, path


@pytest.mark.parametrize(
    ("package", "path"), list(package_modules()), ids=lambda v: str(v).replace(str(REPO), "")
)
def test_dependencies_point_one_way(package: str, path: Path) -> None:
    if path in WIRING:
        return
    ours = imported_roots(path) & set(PACKAGES)
    assert ours <= ALLOWED[package], (
        f"{path.relative_to(REPO)} imports {sorted(ours - ALLOWED[package])}"
    )
    for library, allowed in HEAVY.items():
        if library in imported_roots(path):
            assert package in allowed, f"{path.relative_to(REPO)} imports {library}"


def test_iiif_imports_flask_only_in_routes() -> None:
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "iiif").rglob("*.py")
        if "flask" in imported_roots(p) and p.name != "routes.py"
    ]
    assert offenders == []


def all_commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix}{name} ")


@pytest.mark.parametrize(("name", "command"), list(all_commands(cli)))
def test_every_command_has_help(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"`archive {name}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"`archive {name}` option {param.opts} has no help text"


def test_top_level_help_documents_the_collection_format(runner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for needle in ("institution.toml", "[fields]", "records.csv", "max_image_size"):
        assert needle in result.output


def test_configuration_page_lists_every_setting() -> None:
    from archive.config import SETTINGS

    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in page]
    assert missing == [], f"docs/configuration.md does not describe {missing}"
