"""The Bicep files in infra/, read as data with pycep-parser, and small helpers over the tree.

pycep turns a Bicep file into nested dicts: ``parameters``, ``variables``, ``resources`` and
``outputs`` keyed by symbolic name, every expression as a dict (``{"operator": ...}``,
``{"function": ...}``). Two quirks shape the helpers below:

- a string literal and an identifier both come out as a plain ``str`` (``'uploads'`` and
  ``uploadsContainerName`` look alike), so :func:`resolve` treats a string that names a
  variable or parameter as that variable or parameter; a quoted object key (``'a-b': 1``)
  keeps its quotes;
- a conditional resource (``= if (...) {...}``) nests its body one level down, under
  ``config.config``, next to ``config.condition``; :class:`Resource` hides that.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
EVENTGRID = INFRA / "eventgrid.bicep"
ENTRA = INFRA / "entra.bicep"
BICEPCONFIG = INFRA / "bicepconfig.json"
# The one Bicep extension used: Microsoft Graph v1.0 (entra.bicep), named in bicepconfig.json.
GRAPH_EXTENSION = "microsoftGraphV1"


def bicep_files() -> list[Path]:
    """Every Bicep file in infra/ (each must parse with pycep-parser)."""
    return sorted(INFRA.glob("*.bicep"))


def graph_files() -> list[Path]:
    """The files that declare Microsoft Graph resources through an `extension` statement.

    checkov's parser reads neither `extension` nor `deployer()`, and checkov has no check for a
    Microsoft.Graph type, so these are asserted in tests/infra instead of scanned by checkov.
    """
    return [path for path in bicep_files() if "extensions" in parse(path)]


def checkov_files() -> list[Path]:
    """The files checkov scans: every Bicep file but the Microsoft Graph ones."""
    graph = set(graph_files())
    return [path for path in bicep_files() if path not in graph]


@functools.cache
def _parser() -> BicepParser:
    # cache=False: Lark would otherwise write its compiled grammar to the temp directory.
    return BicepParser(cache=False)


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep tree of one file, parsed once per test session."""
    tree: dict[str, Any] = dict(_parser().parse(file_path=path))
    return tree


def resource_lines(path: Path) -> dict[str, range]:
    """The lines (1-based, inclusive) each resource declaration spans, by symbolic name."""
    tree = BicepParser(add_line_numbers=True, cache=False).parse(file_path=path)
    return {
        name: range(raw["__start_line__"], raw["__end_line__"] + 1)
        for name, raw in tree["resources"].items()
    }


@dataclass(frozen=True)
class Resource:
    """One ``resource`` declaration: its symbolic name, type and (unwrapped) body."""

    name: str
    type: str
    api_version: str
    existing: bool
    condition: Any
    body: dict[str, Any]

    @property
    def properties(self) -> dict[str, Any]:
        value = self.body.get("properties", {})
        assert isinstance(value, dict), f"{self.name}.properties is not an object"
        return value


def resources(tree: dict[str, Any], type_: str | None = None) -> dict[str, Resource]:
    """The file's resources by symbolic name, optionally only those of one type."""
    found = {}
    for name, raw in tree.get("resources", {}).items():
        config = raw["config"]
        condition = None
        if "condition" in config and "config" in config:
            condition, config = config["condition"], config["config"]
        resource = Resource(
            name, raw["type"], raw["api_version"], raw["existing"], condition, config
        )
        if type_ is None or resource.type == type_:
            found[name] = resource
    return found


def only(tree: dict[str, Any], type_: str) -> Resource:
    """The one resource of a type that the file creates (not ``existing``)."""
    matches = [r for r in resources(tree, type_).values() if not r.existing]
    assert len(matches) == 1, f"expected one {type_}, found {[r.name for r in matches]}"
    return matches[0]


def dig(value: Any, path: str) -> Any:
    """``dig(body, "properties.sku.name")``: follow object keys; a missing key is an error."""
    for key in path.split("."):
        assert isinstance(value, dict), f"not an object on the way to {path!r}"
        assert key in value, f"no {key!r} on the way to {path!r}"
        value = value[key]
    return value


def reference(node: Any) -> str | None:
    """A property chain as dotted text (``storage.properties.primaryEndpoints.blob``).

    A plain string comes back as is; anything that is not an identifier or a chain of
    property accesses (a function call, a literal object) gives None.
    """
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and dig_or_none(node, "operator.type") == "property_accessor":
        operands = node["operator"]["operands"]
        head, tail = reference(operands["operand_1"]), reference(operands["operand_2"])
        return f"{head}.{tail}" if head is not None and tail is not None else None
    return None


def dig_or_none(value: Any, path: str) -> Any:
    """Like :func:`dig`, but None where the path does not exist."""
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def function(node: Any) -> tuple[str, dict[str, Any]] | None:
    """``(type, parameters)`` of a function call node, e.g. ``("empty", {...})``; else None."""
    call = dig_or_none(node, "function")
    if not isinstance(call, dict):
        return None
    return str(call["type"]), dict(call.get("parameters") or {})


def resolve(tree: dict[str, Any], node: Any) -> Any:
    """A variable or parameter name, or ``var.key``, replaced by its value (or default).

    Only literal values are followed; other nodes come back unchanged.
    """
    name = reference(node)
    if name is None:
        return node
    head, _, rest = name.partition(".")
    if head in tree.get("variables", {}):
        value = tree["variables"][head]["value"]
    elif head in tree.get("parameters", {}):
        value = tree["parameters"][head]["default"]
    else:
        return node
    return dig(value, rest) if rest else value


def walk(node: Any) -> Iterator[Any]:
    """Every node of a tree, depth first (dicts, lists and leaves)."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def app_settings(tree: dict[str, Any]) -> dict[str, Any]:
    """The function app's settings (its `appsettings` config resource), name -> value node."""
    (config,) = (
        r
        for r in resources(tree, "Microsoft.Web/sites/config").values()
        if r.body["name"] == "appsettings"
    )
    assert config.body["parent"] == only(tree, "Microsoft.Web/sites").name
    return config.properties


def decorators(tree: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """The decorators of a parameter (or output, variable) as ``{type: argument}``."""
    return {d["type"]: d.get("argument") for d in tree[section][name]["decorators"]}


def evaluate(tree: dict[str, Any], node: Any, given: dict[str, Any]) -> Any:
    """What an expression gives at deployment, for the parameters and deployment-time values
    in ``given`` (keyed by parameter name, or by expression text such as ``tenant().tenantId``
    and ``entraApp.outputs.clientId``). Knows the few forms main.bicep's settings use:
    literals, names, interpolation, ``?:``, ``!``, ``+``, ``-`` and
    empty/endsWith/substring/length/string."""
    if isinstance(node, (bool, int)):
        return node
    if isinstance(node, str):
        return _evaluate_text(tree, node, given)
    text = expression_text(node)
    if text is not None:
        assert text in given, f"no deployment-time value given for {text}"
        return given[text]
    if dig_or_none(node, "operator") is not None:
        return _evaluate_operator(tree, node["operator"], given)
    return _evaluate_call(tree, node, given)


def _evaluate_text(tree: dict[str, Any], node: str, given: dict[str, Any]) -> Any:
    """A name (given, a variable or a parameter's default), or a literal with ``${...}``."""
    if node in given:
        return given[node]
    if node in tree.get("variables", {}):
        return evaluate(tree, tree["variables"][node]["value"], given)
    if node in tree.get("parameters", {}):
        return evaluate(tree, tree["parameters"][node]["default"], given)
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(evaluate(tree, m.group(1), given)), node)


def _evaluate_operator(
    tree: dict[str, Any], operator: dict[str, Any], given: dict[str, Any]
) -> Any:
    args = {k: evaluate(tree, v, given) for k, v in operator["operands"].items()}
    if operator["type"] == "conditional":
        return args["true_value"] if args["condition"] else args["false_value"]
    if operator["type"] == "not":
        return not args["bool_value"]
    if operator["type"] == "add":
        return args["operand_1"] + args["operand_2"]
    assert operator["type"] == "substract", f"cannot evaluate {operator['type']}"
    return args["operand_1"] - args["operand_2"]


def _evaluate_call(tree: dict[str, Any], node: Any, given: dict[str, Any]) -> Any:
    kind, params = function(node) or ("", {})
    args = {k: evaluate(tree, v, given) for k, v in params.items()}
    if kind == "empty":
        return not args["item_to_test"]
    if kind == "ends_with":
        return args["string_to_search"].endswith(args["string_to_find"])
    if kind == "length":
        return len(args["arg_1"])
    if kind == "string":
        value = args["value_to_convert"]
        return str(value).lower() if isinstance(value, bool) else str(value)
    assert kind == "substring", f"cannot evaluate {node}"
    start = args["start_index"]
    return args["string_to_parse"][start : start + args["length"]]


def expression_text(node: Any) -> str | None:
    """``tenant().tenantId``, ``environment().authentication.loginEndpoint``, ``a.b.c``: a
    property chain (from a name or an argument-less function call) as text; else None."""
    if dig_or_none(node, "operator.type") != "property_accessor":
        return None
    operands = node["operator"]["operands"]
    call = function(operands["operand_1"])
    head = f"{call[0]}()" if call is not None and not call[1] else reference(operands["operand_1"])
    tail = reference(operands["operand_2"])
    return f"{head}.{tail}" if head is not None and tail is not None else None
