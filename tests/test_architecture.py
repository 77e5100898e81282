"""The shape of the code, guarded: imports point down the flow, never back up, with no loops;
the product never imports the tests; every write of a state goes through its machine."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from reports.models import Item, Report
from reports.states import ITEM_MOVES, REPORT_MOVES, IllegalMove, item_move, report_move

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["accounts", "devtools", "reports", "tsreview"]

# The allowed directions. A module may import modules of a lower rank, and modules of its own
# stage package (a file of reports/intake/ may import another file of reports/intake/); nothing
# imports up. The flow, bottom to top: the models and their helpers; intake; review (queue,
# reveal, decisions); the CyberTipline documents and client; reporting; the lead's tools; then
# the entry points (API, HTML, tasks, admin, sign-in); then what wires them together.
RANKS = {
    "reports.models": 0, "reports.errors": 0, "reports.jobs": 0, "reports.migrations": 0,
    "reports.dbroles": 0, "reports.checks": 0, "reports.keyfiles": 0, "reports.counters": 0,  # grants, deploy checks, key files, cache counters
    "reports.apps": 1,
    "reports.states": 1, "reports.audit": 1, "reports.access": 1, "reports.events": 1,
    "reports.intake": 2,
    "reports.review": 3,
    "reports.cybertip": 4,
    "reports.reporting": 5,
    "reports.leads": 6, "reports.feedback": 6,
    "reports.api": 7, "reports.web": 7, "reports.tasks": 7, "reports.admin": 7, "accounts": 7,
    "devtools": 8,  # the fake CyberTipline and the demo, made through the product's own paths
    "reports.management": 9,
    "tsreview": 10, "reports": 10,  # reports/__init__.py
}


def place(module: str) -> str:
    """The entry of RANKS a module belongs to (its longest matching prefix)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANKS:
            return prefix
    raise AssertionError(f"{module} has no place in RANKS: add it to the test")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """Every module of ours this file imports, at the top or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = [f"{target}.{alias.name}" for alias in node.names if is_module(f"{target}.{alias.name}")]
            found.update(subs or [target])
    return {m for m in found if m.split(".")[0] in PRODUCT + ["tests", "bench"]}


def product_files() -> list[Path]:
    return [p for top in PRODUCT for p in sorted((ROOT / top).rglob("*.py"))]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in product_files()}


def against_the_flow(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        here = place(module)
        for target in targets:
            there = place(target)
            if there != here and RANKS[there] >= RANKS[here]:
                wrong.append(f"{module} -> {target} ({here} rank {RANKS[here]}, {there} rank {RANKS[there]})")
    return sorted(wrong)


def loops_in(graph: dict[str, set[str]]) -> list[str]:
    state, loops = defaultdict(int), []  # 0 new, 1 on the path, 2 done

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state[target] == 1:
                loops.append(" -> ".join(path[path.index(target):] + [target]))
            elif state[target] == 0:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    return loops


def test_imports_point_down_the_flow(graph):
    wrong = against_the_flow(graph)
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_there_are_no_import_loops(graph):
    loops = loops_in(graph)
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_the_product_never_imports_the_tests_or_the_benchmarks(graph):
    offenders = [f"{m} -> {t}" for m, targets in graph.items() for t in targets if t.split(".")[0] in ("tests", "bench")]
    assert not offenders


def test_the_guards_catch_an_import_up_the_flow_and_a_loop():
    """The checks themselves can fail: a stage importing an entry point, a loop in one stage."""
    graph = {"reports.review.queue": {"reports.web.review", "reports.models"}, "reports.web.review": set(),
             "reports.intake.media": {"reports.intake.storage"}, "reports.intake.storage": {"reports.intake.media"}}
    assert against_the_flow(graph) == ["reports.review.queue -> reports.web.review (reports.review rank 3, reports.web rank 7)"]
    assert loops_in(graph) == ["reports.intake.media -> reports.intake.storage -> reports.intake.media"]
    with pytest.raises(AssertionError):
        place("somewhere.else")


# --- The two state machines ---------------------------------------------------------------------

@pytest.mark.parametrize("current,new", sorted(ITEM_MOVES))
def test_every_allowed_item_move_is_allowed(current, new):
    assert item_move(current, new) == new


@pytest.mark.parametrize("current,new", sorted(REPORT_MOVES))
def test_every_allowed_report_move_is_allowed(current, new):
    assert report_move(current, new) == new


ILLEGAL_ITEM = [(Item.State.NEW, Item.State.CLAIMED), (Item.State.NEW, Item.State.DECIDED), (Item.State.QUEUED, Item.State.DECIDED),
                (Item.State.DECIDED, Item.State.QUEUED), (Item.State.DECIDED, Item.State.CLAIMED), (Item.State.QA, Item.State.DECIDED),
                (Item.State.ESCALATED, Item.State.QUEUED), (Item.State.CLAIMED, Item.State.NEW), (Item.State.CLAIMED, Item.State.CLAIMED)]
ILLEGAL_REPORT = [(Report.State.DRAFT, Report.State.FINISHED), (Report.State.DRAFT, Report.State.STALLED),
                  (Report.State.FINISHED, Report.State.DRAFT), (Report.State.FINISHED, Report.State.FAILED),
                  (Report.State.FAILED, Report.State.APPROVED), (Report.State.APPROVED, Report.State.DRAFT),
                  (Report.State.STALLED, Report.State.DRAFT), (Report.State.FAILED, Report.State.FINISHED)]


@pytest.mark.parametrize("current,new", ILLEGAL_ITEM)
def test_an_illegal_item_move_raises(current, new):
    assert (current, new) not in ITEM_MOVES
    with pytest.raises(IllegalMove) as raised:
        item_move(current, new)
    assert "cannot go from" in raised.value.errors["state"]


@pytest.mark.parametrize("current,new", ILLEGAL_REPORT)
def test_an_illegal_report_move_raises(current, new):
    with pytest.raises(IllegalMove):
        report_move(current, new)


def _move_call(node) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
        "item_move", "report_move")


def _writes_state_without_a_move(tree) -> list[int]:
    """Lines that set `state` (an attribute, or an update()/create() keyword) to anything but
    the result of item_move/report_move (directly, or through a name assigned from one)."""
    bad = []
    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        moved_names = {t.id for n in ast.walk(func) if isinstance(n, ast.Assign) and _move_call(n.value)
                       for t in n.targets if isinstance(t, ast.Name)}

        def ok(value, moved_names=moved_names):
            return _move_call(value) or (isinstance(value, ast.Name) and value.id in moved_names)

        for node in ast.walk(func):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("update", "create", "update_or_create"):
                bad += [node.lineno for k in node.keywords if k.arg == "state" and not ok(k.value)]
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = (zip(target.elts, node.value.elts, strict=True)
                             if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) else [(target, node.value)])
                    bad += [node.lineno for t, v in pairs
                            if isinstance(t, ast.Attribute) and t.attr == "state" and not ok(v)]
    return bad


def test_every_writer_of_a_state_asks_its_machine():
    offenders = []
    for path in (ROOT / "reports").rglob("*.py"):
        if "migrations" in path.parts or path.name == "states.py":
            continue
        offenders += [f"{path.relative_to(ROOT)}:{line}" for line in _writes_state_without_a_move(ast.parse(path.read_text()))]
    assert not offenders, "state written without item_move/report_move: " + ", ".join(offenders)


def test_the_state_guard_catches_a_direct_write():
    tree = ast.parse("def f(item):\n    item.state = 'decided'\n    Item.objects.filter(pk=1).update(state='queued')\n")
    assert _writes_state_without_a_move(tree) == [2, 3]
