"""The layering of ARCHITECTURE.md, enforced: import-linter's contracts in pyproject.toml hold for this tree,
every module of ``rag`` is placed in a layer, and the contracts do catch a layer broken or a cycle closed
by an import inside a function."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
PACKAGES = ("rag", "ingest", "eval")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _contracts() -> dict[str, dict[str, Any]]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        config = tomllib.load(fh)["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _lint(root: Path) -> tuple[int, str]:
    """``lint-imports`` over the packages under ``root``: exit code and report (colours removed)."""
    result = subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, ANSI.sub("", result.stdout + result.stderr)


def test_the_import_contracts_hold() -> None:
    code, report = _lint(REPO)
    assert code == 0, report
    assert "Contracts: 4 kept, 0 broken." in report


def test_every_rag_module_is_in_a_layer() -> None:
    contracts = _contracts()
    core = set(contracts["core"]["source_modules"])
    application = set(contracts["core"]["forbidden_modules"]) - {"ingest", "eval"}
    children = {
        f"rag.{p.stem if p.is_file() else p.name}"
        for p in (REPO / "rag").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert not core & application
    assert children - core - application == set(), "add the new module to a layer in pyproject.toml"
    assert (core | application) - children == set(), "pyproject.toml names a module that does not exist"
    assert set(contracts["ingest"]["forbidden_modules"]) == application | {"eval"}
    assert set(contracts["eval"]["forbidden_modules"]) == application


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The three packages and pyproject.toml, copied so that a test can break them."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "resources"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, code: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n\n" + code + "\n")


def test_a_core_module_importing_ingest_breaks_the_core_contract(tree_copy: Path) -> None:
    _append(
        tree_copy / "rag" / "types.py", "def _reach_down():\n    from ingest.store import publish\n\n    return publish"
    )
    code, report = _lint(tree_copy)
    assert code == 1 and "Contracts: 3 kept, 1 broken." in report
    assert "rag core imports neither ingest, eval nor the application layer BROKEN" in report
    assert "rag.types -> ingest.store" in report


def test_a_cycle_closed_inside_a_function_breaks_the_acyclic_contract(tree_copy: Path) -> None:
    _append(tree_copy / "rag" / "config.py", "def _late():\n    import rag.pipeline\n\n    return rag.pipeline")
    code, report = _lint(tree_copy)
    assert code == 1 and "Contracts: 3 kept, 1 broken." in report
    assert "no import cycles between the modules of a package BROKEN" in report
    assert "No cycles are allowed in rag." in report and ".config -> .pipeline" in report
