"""What a scanner's JSON may hold before anything reads it: no nesting deeper than a limit, and
no character that XML 1.0 cannot carry (a report is XML; see docs/security.md).

Both checks are iterative: a document nested thousands deep is refused by its limit, never by
Python's recursion limit.
"""

import json
import re

from django.conf import settings

# XML 1.0 Char: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF. Everything else:
# the other C0 controls, lone surrogates (JSON's "\ud800"), U+FFFE and U+FFFF.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class TooDeep(ValueError):
    """The document nests deeper than TSREVIEW_MAX_JSON_DEPTH."""

    def __init__(self, limit: int):
        super().__init__(f"Nested deeper than the limit of {limit} levels (TSREVIEW_MAX_JSON_DEPTH).")
        self.limit = limit


def depth_limit() -> int:
    return settings.TSREVIEW_MAX_JSON_DEPTH


def raw_depth(raw: str) -> int:
    """How deep a JSON text nests, counted from its brackets outside strings (no parsing)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", raw)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def json_loads_limited(raw: str, **kwargs):
    """json.loads, refusing (TooDeep) a text nested deeper than the limit before parsing it."""
    if raw_depth(raw) > depth_limit():
        raise TooDeep(depth_limit())
    return json.loads(raw, **kwargs)


def not_xml_char(value: str) -> str | None:
    """A description of the first character of `value` that XML 1.0 cannot carry, or None."""
    bad = NOT_XML.search(value)
    if bad is None:
        return None
    return f"Contains a character that XML 1.0 cannot carry (U+{ord(bad.group()):04X} at position {bad.start()})."


def text_errors(document, prefix: str = "") -> dict[str, list[str]]:
    """Every string (and key) in a parsed document that XML 1.0 cannot carry, named by its path
    as the API names fields ("metadata.matches[0].hash_value"); also the nesting limit, for a
    document that did not come through json_loads_limited."""
    errors: dict[str, list[str]] = {}
    limit = depth_limit()
    stack = [(prefix, document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, (dict, list)) and depth >= limit:
            return {prefix or "body": [str(TooDeep(limit))]}
        if isinstance(value, dict):
            for key, child in value.items():
                key_text = str(key)
                child_path = f"{path}.{key_text}" if path else key_text
                problem = not_xml_char(key_text)
                if problem:
                    errors.setdefault(json.dumps(child_path)[1:-1], []).append(f"The field name: {problem}")
                    continue
                stack.append((child_path, child, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{n}]", child, depth + 1) for n, child in enumerate(value))
        elif isinstance(value, str):
            problem = not_xml_char(value)
            if problem:
                errors.setdefault(path or "body", []).append(problem)
    return errors
