"""YAML read strictly: a safe loader that refuses a repeated key and an integer Python cannot read, and a
one-line description of a YAML problem with its line and column."""

from __future__ import annotations

import sys

import yaml


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated key, which PyYAML would otherwise let the last one win."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: StrictLoader, node):
    """An int, or a problem at its line: Python reads no integer over sys.get_int_max_str_digits()."""
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number longer than {sys.get_int_max_str_digits()} digits", node.start_mark
        ) from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())


StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
