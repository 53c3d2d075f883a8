"""A small, strict reader of protobuf text format, for ``config.pbtxt``.

It reads the syntax (fields, nested messages, lists, strings, numbers, enum identifiers,
``#`` comments) into a JSON-like dict shaped by a schema, the same shape Triton's JSON model
configuration has, so both files go through one validation. A field the schema does not
know is refused with its line number: a typo never silently becomes a default.

>>> read_pbtxt('name: "m" max_batch_size: 4 input [{ name: "x" dims: [2] }]',
...            {"name": str, "max_batch_size": int,
...             "input": [{"name": str, "dims": [int]}]})
{'name': 'm', 'max_batch_size': 4, 'input': [{'name': 'x', 'dims': [2]}]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from server.core.errors import InvalidArgument

# A schema maps field names to: str, int, float, bool, "enum" (an identifier kept as a
# string), a nested schema dict (a message), a one-element list of either (repeated),
# "map" (Triton's map<string, ModelParameter>, written as repeated
# { key: .. value { string_value: .. } }) or "str_map" (map<string, string>, written as
# repeated { key: .. value: .. }), or a ``MapOf`` (map<string, Message>, written as
# repeated { key: .. value { .. } }).
Schema = dict[str, Any]


@dataclass(frozen=True)
class MapOf:
    """A map from names to messages of ``value``'s schema (``model_warmup``'s ``inputs``)."""

    value: Schema

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}\[\]:,;<>])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos, line = [], 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidArgument(f"config.pbtxt line {line}: unexpected character "
                                  f"{text[pos]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return out


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise InvalidArgument(f"config.pbtxt: unexpected end of file"
                                  f"{f', expected {value!r}' if value else ''}")
        if value is not None and token[1] != value:
            raise InvalidArgument(f"config.pbtxt line {token[2]}: expected {value!r}, "
                                  f"found {token[1]!r}")
        self.pos += 1
        return token

    def skip_separator(self) -> None:
        token = self.peek()
        if token is not None and token[1] in ",;":
            self.pos += 1

    def message(self, schema: Schema, closing: str | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            token = self.peek()
            if token is None:
                if closing is not None:
                    raise InvalidArgument(f"config.pbtxt: unexpected end of file, "
                                          f"expected {closing!r}")
                return result
            if closing is not None and token[1] == closing:
                self.pos += 1
                return result
            kind, name, line = self.take()
            if kind != "ident":
                raise InvalidArgument(f"config.pbtxt line {line}: expected a field name, "
                                      f"found {name!r}")
            if name not in schema:
                raise InvalidArgument(f"config.pbtxt line {line}: unknown field {name!r}; "
                                      f"known here: {sorted(schema)}")
            field = schema[name]
            entry_schema = _map_entry(field)
            if entry_schema is not None:
                entries = result.setdefault(name, {})
                for entry in self.values(entry_schema, name):
                    if "key" not in entry:
                        raise InvalidArgument(f"config.pbtxt line {line}: an entry of map "
                                              f"{name!r} has no key")
                    if entry["key"] in entries:
                        raise InvalidArgument(f"config.pbtxt line {line}: map {name!r} gives "
                                              f"key {entry['key']!r} twice")
                    entries[entry["key"]] = entry.get("value", "" if field == "str_map" else {})
            elif isinstance(field, list):
                values = result.setdefault(name, [])
                values.extend(self.values(field[0], name))
            else:
                if name in result:
                    raise InvalidArgument(f"config.pbtxt line {line}: field {name!r} is "
                                          f"given twice")
                (result[name],) = self.values(field, name, single=True)
            self.skip_separator()

    def values(self, element: Any, name: str, single: bool = False) -> list[Any]:
        token = self.peek()
        if token is not None and token[1] == ":":
            self.pos += 1
            token = self.peek()
        if not single and token is not None and token[1] == "[":
            self.pos += 1
            out = []
            while (token := self.peek()) is not None and token[1] != "]":
                out.append(self.value(element, name))
                self.skip_separator()
            self.take("]")
            return out
        return [self.value(element, name)]

    def value(self, element: Any, name: str) -> Any:
        if isinstance(element, dict):
            token = self.take()
            if token[1] not in "{<":
                raise InvalidArgument(f"config.pbtxt line {token[2]}: field {name!r} is a "
                                      f"message; expected '{{', found {token[1]!r}")
            return self.message(element, "}" if token[1] == "{" else ">")
        kind, text, line = self.take()
        if element is str:
            if kind != "string":
                raise InvalidArgument(f"config.pbtxt line {line}: field {name!r} expects a "
                                      f"quoted string, found {text!r}")
            return _unquote(text)
        if element == "enum":
            if kind != "ident":
                raise InvalidArgument(f"config.pbtxt line {line}: field {name!r} expects an "
                                      f"enum name, found {text!r}")
            return text
        if element is bool:
            if text not in ("true", "false"):
                raise InvalidArgument(f"config.pbtxt line {line}: field {name!r} expects "
                                      f"true or false, found {text!r}")
            return text == "true"
        if kind != "number" or (element is int and not re.fullmatch(r"[-+]?\d+", text)):
            raise InvalidArgument(f"config.pbtxt line {line}: field {name!r} expects "
                                  f"{'an integer' if element is int else 'a number'}, "
                                  f"found {text!r}")
        return int(text) if element is int else float(text)


_MAP_ENTRIES: dict[str, Schema] = {"map": {"key": str, "value": {"string_value": str}},
                                   "str_map": {"key": str, "value": str}}


def _map_entry(field: Any) -> Schema | None:
    """The schema of one entry when ``field`` is a map, else None."""
    if isinstance(field, MapOf):
        return {"key": str, "value": field.value}
    if isinstance(field, str):
        return _MAP_ENTRIES.get(field)
    return None


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def read_pbtxt(text: str, schema: Schema) -> dict[str, Any]:
    """Parse ``text`` against ``schema`` into a JSON-like dict (``InvalidArgument`` if bad)."""
    return _Reader(text).message(schema, None)
