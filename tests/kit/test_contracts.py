"""The Protobuf contracts: buf lint (STANDARD) and format, no breaking change
against main, and generated code that matches the protos (never stale)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO

BUF = REPO / "node_modules" / ".bin" / "buf"


def run(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    # PYTHON: the generator must use this interpreter (it has grpcio-tools), not whatever is on PATH.
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_buf_lint_passes():
    result = run(str(BUF), "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_protos_are_buf_formatted():
    result = run(str(BUF), "format", "--exit-code", "-d")
    assert result.returncode == 0, "run `npx buf format -w`:\n" + result.stdout


def _git(*args: str) -> str:
    return run("git", *args).stdout.strip()


def test_no_breaking_change_against_main():
    """On a branch: against main. On main: against the previous commit of main
    (CI runs on main, so each landing is checked against what was there)."""
    if run("git", "rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    if branch != "main" and run("git", "rev-parse", "--verify", "main").returncode == 0:
        against = ".git#branch=main"
    elif run("git", "rev-parse", "--verify", "HEAD~1").returncode == 0:
        against = ".git#ref=HEAD~1"
    else:
        pytest.skip("no earlier commit to compare with (first commit or shallow clone)")
    if run("git", "ls-tree", "-d", against.split("=")[1], "protos").stdout == "":
        pytest.skip(f"{against} has no protos yet")
    result = run(str(BUF), "breaking", "--against", against)
    assert result.returncode == 0, result.stdout + result.stderr


def _diff(left, right) -> list[str]:
    """Files that differ, are missing or are extra between two trees."""
    problems = []
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    stack = [(comparison, "")]
    while stack:
        node, prefix = stack.pop()
        problems += [f"{prefix}{name} (only committed)" for name in node.left_only]
        problems += [f"{prefix}{name} (missing)" for name in node.right_only]
        _, mismatch, errors = filecmp.cmpfiles(node.left, node.right, node.common_files, shallow=False)
        problems += [f"{prefix}{name} (stale)" for name in mismatch + errors]
        stack += [(sub, f"{prefix}{name}/") for name, sub in node.subdirs.items()]
    return problems


def test_generated_code_is_fresh(tmp_path):
    """Regenerates into a copy of the tree and compares with what is committed."""
    for name in ("protos", "scripts"):
        shutil.copytree(REPO / name, tmp_path / name)
    for name in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    os.symlink(REPO / "node_modules", tmp_path / "node_modules")
    result = run(str(tmp_path / "scripts" / "generate"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stale = _diff(REPO / "gen" / "python", tmp_path / "gen" / "python")
    stale += _diff(REPO / "web" / "src" / "gen", tmp_path / "web" / "src" / "gen")
    assert not stale, "generated code is stale; did you forget to run ./scripts/generate?\n" + "\n".join(stale)
