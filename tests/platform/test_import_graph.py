"""The shape of `portal/`: no import cycles, no import hidden inside a function without a reason, and a wire library
for amoCRM that imports without Flask or the database."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"

# Imports inside functions that are allowed, by (module, function): everything else belongs at the top of its module.
# A new one fails this test until it is added here with its reason; an import inside a function to dodge a cycle
# has no reason good enough.
FACTORY = "app factory: features are imported when the app is built, so plain libraries import without Flask"
CLI = "CLI command: what only this command needs is imported when it runs, not by every web process at start-up"
ALLOWED_FUNCTION_IMPORTS = {
    ("portal", "create_app"): FACTORY,
    ("portal", "install_ingest_layer"): FACTORY,
    ("portal", "install_proxy_fix"): FACTORY,
    ("portal", "register_extensions"): FACTORY,
    ("portal", "register_template_helpers"): FACTORY,
    ("portal", "register_blueprints"): FACTORY,
    ("portal", "register_error_handlers"): FACTORY,
    ("portal", "register_commands"): FACTORY,
    ("portal.commands", "demo"): CLI,
    ("portal.commands", "start_demo_sandbox"): CLI,
    ("portal.commands", "start_demo_mail"): CLI,
    ("portal.commands", "start_demo_ad_sandboxes"): CLI,
    ("portal.commands", "worker"): CLI,
    ("portal.commands", "scheduler"): CLI,
    ("portal.commands", "demo_data"): CLI,
}


def portal_modules() -> dict[str, Path]:
    modules = {}
    for path in PORTAL.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict) -> set[str]:
    """The portal modules an import statement loads (`from package import name` loads package.name when that is a
    module, else the package)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    """Edges of every import, at module level and inside functions; and where the function-level ones are."""
    modules = portal_modules()
    edges: dict[str, set[str]] = {module: set() for module in modules}
    in_functions = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges[module] |= imported_modules(module, path, node, modules)
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        in_functions.append((module, function.name, node.lineno))
    return edges, in_functions


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_walker_sees_a_cycle_and_the_imports_inside_functions():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges, in_functions = import_graph()
    assert "portal.amocrm.api.errors" in edges["portal.amocrm.api.client"]
    assert any(module == "portal" and function == "create_app" for module, function, _ in in_functions)


def test_portal_has_no_import_cycles():
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_imports_inside_functions_are_only_the_allowed_ones():
    _, in_functions = import_graph()
    unexplained = sorted(f"{module}.{function} (line {line})" for module, function, line in in_functions
                         if (module, function) not in ALLOWED_FUNCTION_IMPORTS)
    assert unexplained == [], "move these imports to the top of their modules (a cycle is fixed, not dodged)"
    stale = set(ALLOWED_FUNCTION_IMPORTS) - {(module, function) for module, function, _ in in_functions}
    assert stale == set(), "these allowances no longer apply: remove them"


def test_jobs_is_plumbing_that_imports_no_feature():
    edges, _ = import_graph()
    for module in (name for name in edges if name.startswith("portal.jobs")):
        features = {target for target in edges[module]
                    if not target.startswith(("portal.jobs", "portal.extensions", "portal.redis_direct",
                                              "portal.log_context"))}
        assert features == set(), f"{module} imports {features}"


def test_the_amocrm_wire_library_imports_without_flask_or_the_database():
    blocked = ("flask", "flask_sqlalchemy", "sqlalchemy", "redis", "rq", "psycopg")
    script = (f"import sys\nsys.modules.update(dict.fromkeys({blocked!r}))\n"
              "import portal.amocrm, portal.amocrm.api\n"
              "from portal.amocrm.api import client, errors, oauth, payloads, webhook_bodies\n"
              "assert not any(sys.modules.get(name) for name in " + repr(blocked) + ")\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_periodic_and_named_job_is_a_function():
    from portal.amocrm import scheduling
    from portal.periodic_jobs import PERIODIC_JOBS

    paths = [job.func for job in PERIODIC_JOBS] + [value for name, value in vars(scheduling).items()
                                                   if name.isupper() and str(value).startswith("portal.")]
    assert len(paths) > 10
    for path in paths:
        module, _, name = path.rpartition(".")
        assert callable(getattr(__import__(module, fromlist=[name]), name)), path
    assert len({job.name for job in PERIODIC_JOBS}) == len(PERIODIC_JOBS)  # names key the once-per-period lock


def test_the_architecture_page_names_only_code_that_exists():
    import importlib
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    names = set(re.findall(r"portal(?:\.[A-Za-z_]+)+", text))
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for split in range(len(parts), 0, -1):
            try:
                found = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                found = getattr(found, attribute, None)
            if found is None:
                missing.append(name)
            break
    assert missing == []
