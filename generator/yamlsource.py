"""YAML with line numbers, read without ever running anything the file asks for.

The file is composed with PyYAML's SafeLoader (so `!!python/object` and friends are never
constructed) into a tree of `YNode`s that remember the line of every value and every key. Only
the plain YAML types are accepted; any other tag is reported as a problem at its line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

# Tags whose values become plain Python values; a timestamp stays the text the user wrote (the
# consumers want JSON, and "2020-01-01" in a predictor's config is just a string to them).
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"

# An alias-heavy file ("billion laughs") shares nodes here, but turning a free-form map into plain
# Python copies them; past this many values the file is refused instead of exhausting memory.
MAX_PLAIN_VALUES = 100_000


@dataclass
class YNode:
    """One YAML value: a dict of YNodes, a list of YNodes, or a scalar, with its 1-based line."""

    value: Any
    line: int
    key_lines: dict[Any, int] = field(default_factory=dict)  # mapping keys -> their line
    # (key, line, line of the first occurrence) for keys given more than once in a mapping
    duplicates: list[tuple[Any, int, int]] = field(default_factory=list)
    refused: bool = False  # already reported (bad tag, bad alias): later checks skip it

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def plain(self) -> Any:
        """The value as plain Python (dicts, lists, scalars); ValueError when it is too large."""
        budget = [MAX_PLAIN_VALUES]
        return _plain(self, budget)


def _plain(node: YNode, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_PLAIN_VALUES} values once aliases are expanded")
    if node.is_map:
        return {key: _plain(child, budget) for key, child in node.value.items()}
    if node.is_list:
        return [_plain(child, budget) for child in node.value]
    return node.value


class YamlProblem(Exception):
    """The text is not YAML we accept; `line` is 1-based (None when unknown)."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class ParsedYaml:
    root: YNode | None  # None for an empty document
    problems: list[YamlProblem]  # tags, keys and aliases we refuse (the rest of the tree is usable)


class _Loader(yaml.SafeLoader):
    """SafeLoader noting where each list item that is an alias is written: the composer hands
    back the anchored node itself, whose line is the anchor's."""

    def __init__(self, stream: str):
        super().__init__(stream)
        # (id of the sequence node, index) -> (alias name, line of the alias)
        self.item_aliases: dict[tuple[int, int], tuple[str, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        node = super().compose_node(parent, index)
        if isinstance(event, yaml.AliasEvent) and isinstance(parent, yaml.SequenceNode):
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            self.item_aliases[(id(parent), index)] = (str(event.anchor), line)
        return node


def parse_yaml(text: str) -> ParsedYaml:
    """Composes `text` into YNodes. Raises YamlProblem on a syntax error (one per file: after a
    syntax error nothing further can be trusted).

    The top level is cortex.yaml's list of APIs: an item written as an alias (`- *x`) would be
    the anchored API again, name and all, reported at the anchor's line; it is refused at the
    alias's own line instead. Aliases anywhere else (shared sections, merge keys) work.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        what = err.problem or err.context or "not valid YAML"
        context = err.context_mark
        if err.problem and err.context and context is not None and context.line + 1 != line:
            # e.g. "expected ',' or ']', but got ':' (while parsing a flow sequence on line 4)"
            what += f" ({err.context} on line {context.line + 1})"
        raise YamlProblem(line, f"invalid YAML: {what}") from None
    except yaml.YAMLError as err:
        raise YamlProblem(None, f"invalid YAML: {err}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise YamlProblem(
            None, f"invalid YAML: nested too deeply (a config needs at most {MAX_DEPTH} levels)"
        ) from None
    finally:
        loader.dispose()
    builder = _Builder(loader)
    root = builder.build(node) if node is not None else None
    if node is not None and root is not None and root.is_list:
        for index, item in enumerate(node.value):
            alias = loader.item_aliases.get((id(node), index))
            if alias is None:
                continue
            name, line = alias
            builder.problems.append(
                YamlProblem(
                    line,
                    f"an API cannot be an alias (*{name}, of line {item.start_mark.line + 1}): it "
                    f'would repeat that API, name included; copy its fields with "- <<: *{name}" '
                    "and give it a name of its own",
                )
            )
            root.value[index] = YNode(None, line, refused=True)
    return ParsedYaml(root, builder.problems)


# Deeper than any config needs; the table walk and json.dumps of `config` recurse per level.
MAX_DEPTH = 64


class _Builder:
    def __init__(self, loader: yaml.SafeLoader):
        self.loader = loader
        self.problems: list[YamlProblem] = []
        self.done: dict[int, YNode] = {}  # shared (aliased) nodes are built once
        self.in_progress: set[int] = set()

    def build(self, node: yaml.Node) -> YNode:
        key = id(node)
        if key in self.done:
            return self.done[key]
        line = node.start_mark.line + 1
        if key in self.in_progress:
            self.problems.append(YamlProblem(line, "an alias refers to a value that contains it"))
            return YNode(None, line, refused=True)
        if len(self.in_progress) >= MAX_DEPTH:  # in_progress is the chain of open collections
            self.problems.append(
                YamlProblem(line, f"nested more than {MAX_DEPTH} levels deep (a config needs few)")
            )
            return YNode(None, line, refused=True)
        self.in_progress.add(key)
        try:
            built = self._build(node, line)
        finally:
            self.in_progress.discard(key)
        self.done[key] = built
        return built

    def _refuse_tag(self, node: yaml.Node, line: int) -> YNode:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        self.problems.append(
            YamlProblem(
                line, f"the YAML tag {json.dumps(tag)} is not supported (plain values only)"
            )
        )
        return YNode(None, line, refused=True)

    def _build(self, node: yaml.Node, line: int) -> YNode:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP_TAG:
                return YNode(node.value, line)
            if node.tag not in _SCALAR_TAGS:
                return self._refuse_tag(node, line)
            try:
                return YNode(self.loader.construct_object(node, deep=True), line)
            except (yaml.YAMLError, ValueError) as err:
                self.problems.append(YamlProblem(line, f"invalid value: {err}"))
                return YNode(None, line, refused=True)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                return self._refuse_tag(node, line)
            return YNode([self.build(item) for item in node.value], line)
        if not isinstance(node, yaml.MappingNode) or node.tag != _MAP_TAG:
            return self._refuse_tag(node, line)
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        try:
            # resolves `<<` merge keys: the merged pairs go first, in increasing precedence
            self.loader.flatten_mapping(node)
            merged = len(node.value) - explicit
        except yaml.YAMLError as err:
            # the error's own problem text, without the marks that span several lines
            what = getattr(err, "problem", None) or "not a mapping"
            self.problems.append(YamlProblem(line, f"invalid merge key: {what}"))
            merged = 0
        mapping = YNode({}, line)
        # Keys written in this mapping override merged ones (YAML's merge rule); among several
        # merged mappings, the one flatten_mapping puts last wins, so values are what
        # yaml.safe_load reads (PyYAML 6.0.4 reversed that order). Neither is "given twice".
        inherited = dict(self._pairs(node.value[:merged]))  # dict(): the last pair wins
        own = dict(self._pairs(node.value[merged:], mapping))
        for key, (key_line, value_node) in {**inherited, **own}.items():
            mapping.key_lines[key] = key_line
            mapping.value[key] = self.build(value_node)
        return mapping

    def _pairs(
        self, pairs: list[tuple[yaml.Node, yaml.Node]], duplicates_of: YNode | None = None
    ) -> list[tuple[Any, tuple[int, yaml.Node]]]:
        """(key, (key line, value node)) for plain keys; with `duplicates_of`, a key given again
        is noted there as a duplicate and its later value dropped."""
        found: list[tuple[Any, tuple[int, yaml.Node]]] = []
        lines: dict[Any, int] = {}
        for key_node, value_node in pairs:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(YamlProblem(key_line, "a key must be a plain value"))
                continue
            key = self.build(key_node).value
            if duplicates_of is not None and key in lines:
                duplicates_of.duplicates.append((key, key_line, lines[key]))
                continue
            lines[key] = key_line
            found.append((key, (key_line, value_node)))
        return found
