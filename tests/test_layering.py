"""The dependency graph points one way: no import circle (lazy imports inside functions count too),
infrastructure and domain code never import the jobs or the worker, production never imports the
development tools, and every job named by a dotted string exists."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

PACKAGES = ("callnfy_integrations", "jobs")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def _known(name: str) -> str | None:
    """The module `name` refers to (a module, or a name inside one), if it is ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every module of ours that `module` imports, at the top or inside a function."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            source = ".".join(part for part in (base, node.module or "") if part)
            submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES]
            # `from package import submodule` needs the submodule; names from the package need the package.
            targets = submodules + ([source] if len(submodules) < len(node.names) else [])
        else:
            continue
        found |= {known for target in targets if (known := _known(target)) and known != module}
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    assert len(GRAPH) > 60  # the graph is read: a known edge is in it
    assert "callnfy_integrations.events.outbox" in GRAPH["callnfy_integrations.appointments.service"]
    assert circles(GRAPH) == []


def test_only_the_cli_reaches_the_jobs_and_the_worker():
    """Jobs and the worker are edges: views, services and infrastructure never import them."""
    edges = {"callnfy_integrations.cli", "callnfy_integrations.worker"}
    offenders = {module: sorted(target for target in targets
                                if target.startswith("jobs") or target == "callnfy_integrations.worker")
                 for module, targets in GRAPH.items()
                 if module.startswith("callnfy_integrations") and module not in edges}
    assert {module: targets for module, targets in offenders.items() if targets} == {}


def test_production_code_reaches_the_dev_package_only_from_create_app():
    outside = {module: sorted(t for t in targets if t.startswith("callnfy_integrations.dev"))
               for module, targets in GRAPH.items() if not module.startswith("callnfy_integrations.dev")}
    assert {m: t for m, t in outside.items() if t} == {
        "callnfy_integrations": ["callnfy_integrations.dev.console.views", "callnfy_integrations.dev.embedded"]}


@pytest.mark.processes
def test_a_production_process_never_imports_the_dev_package(config):
    """wsgi (every web worker), the worker and the scheduler, built as in production."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), "APP_ENV": "production",
           "SECRET_KEY": "s" * 64, "JWT_SECRET_KEY": "j" * 64, "ENCRYPTION_KEYS": "0f" * 32,
           "PUBLIC_API_URL": "https://integrations.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test",
           "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": config["REDIS_URL"]}
    script = ("import sys, wsgi\n"
              "from callnfy_integrations.worker import build_worker\n"
              "from jobs.schedule import build_scheduler\n"
              "build_worker(wsgi.app); build_scheduler(wsgi.app)\n"
              "import callnfy_integrations.cli, jobs.calendar, jobs.google, jobs.microsoft\n"
              "import jobs.webhooks, jobs.events, jobs.maintenance\n"
              "print(sorted(m for m in sys.modules if m.startswith('callnfy_integrations.dev')))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


JOB_NAME = re.compile(r"jobs(\.[a-z_]+)+")


def job_names() -> set[str]:
    """Every string in the package that names a job by its dotted path ("jobs.google.sync_calendar")."""
    names = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and JOB_NAME.fullmatch(node.value):
                names.add(node.value)
    return names


def test_every_job_named_by_a_string_exists():
    names = job_names()
    assert {"jobs.google.sync_calendar", "jobs.webhooks.send_webhooks", "jobs.events.drain_outbox"} <= names
    missing = []
    for name in sorted(names):
        module, _, function = name.rpartition(".")
        if not callable(getattr(importlib.import_module(module), function, None)):
            missing.append(name)
    assert missing == []
