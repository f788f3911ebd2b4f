"""The import contracts in pyproject.toml (run by ./scripts/check) hold on the
tree and fail when a service imports another service or the kit or the model
layer imports a service: checked on a copy of the tree with one such import
planted, so the contract is known to bite, not only to pass."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ["mendkit", "mendmodels", "interactions", "bot", "trainer", "mesh", "gateway_envoy"]
LINT_IMPORTS = str(REPO / ".venv" / "bin" / "lint-imports")


def copy_tree(destination: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__")
    for package in PACKAGES:
        shutil.copytree(REPO / package, destination / package, ignore=skip)
    shutil.copytree(REPO / "gen" / "python" / "mend", destination / "mend", ignore=skip)
    shutil.copy(REPO / "pyproject.toml", destination / "pyproject.toml")
    return destination


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # Only the copy on the path: the contracts are judged on it, not on the checkout.
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_its_import_contracts(tmp_path):
    result = lint_imports(copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "planted", "contract"), [
    ("trainer/loop.py", "import bot.settings", "Services are independent"),
    ("bot/chat.py", "import interactions.repository", "Services are independent"),
    ("mendkit/settings.py", "import trainer.settings", "Layers: services"),
    ("mendmodels/select.py", "import bot.settings", "Layers: services"),
])
def test_a_planted_import_across_the_layers_breaks_a_contract(tmp_path, module, planted, contract):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout
