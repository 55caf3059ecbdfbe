"""Field tables compiled into one-expression checkers, one per key set a map can have.

A frame's maps come in few shapes (the keys a node sends), so each shape that the
table allows (known integer keys, ascending, the required ones present) is
compiled once into a function that checks every value with one chain of
comparisons and returns the map's row as a tuple. The function accepts only maps
the field-by-field check accepts too, and returns the same row; for anything
else it returns None and the field-by-field check runs to name what is wrong.

>>> check = compile_checker((1, 3), {1: (0, "count", 1), 3: (2, "name", 3)}, 3, {}, {})
>>> check({1: 7, 3: "x"}), check({1: -1, 3: "x"}), check({True: 7, 3: "x"})
((7, None, 'x'), None, None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import kinsight_wire as wire

__all__ = ["Checker", "compile_checker"]

#: A compiled checker: the map's row, or None when the map must be checked field by field.
Checker = Callable[[dict[Any, Any]], "tuple[Any, ...] | None"]


def compile_checker(keys: tuple[int, ...], by_key: Mapping[int, tuple[int, str, int]],
                    width: int, enums: Mapping[str, Mapping[int, str]],
                    ranges: Mapping[str, tuple[int, int]]) -> Checker:
    """A checker for maps whose keys are exactly ``keys``, in that order.

    by_key gives each key's (position in the row, name, value type); enums the
    names of enumerated fields' codes; ranges the fields narrower than their type.
    The caller has made sure that keys are known, ascending and hold the required ones.
    """
    env: dict[str, Any] = {"U32_MAX": wire.U32_MAX, "I32_MIN": wire.I32_MIN,
                           "I32_MAX": wire.I32_MAX, "MAX_TEXT": wire.MAX_TEXT_BYTES,
                           "MAX_LIST": wire.MAX_LIST_ITEMS}
    # A key equal to an integer need not be one (True == 1, 1.0 == 1 and hash alike):
    # the key's type is checked as well as its place.
    conds = [f"type(k{i}) is int" for i in range(len(keys))]
    out = ["None"] * width
    for i, key in enumerate(keys):
        pos, name, vtype = by_key[key]
        v = f"v{i}"
        out[pos] = v
        if vtype == wire.T_UINT and name in enums:
            env[f"E{i}"] = dict(enums[name])
            conds.append(f"type({v}) is int and {v} in E{i}")
            out[pos] = f"E{i}[{v}]"
        elif vtype == wire.T_UINT and name in ranges:
            low, high = ranges[name]
            conds.append(f"type({v}) is int and {int(low)} <= {v} <= {int(high)}")
        elif vtype == wire.T_UINT:
            conds.append(f"type({v}) is int and 0 <= {v} <= U32_MAX")
        elif vtype == wire.T_INT:
            conds.append(f"type({v}) is int and I32_MIN <= {v} <= I32_MAX")
        elif vtype == wire.T_TEXT:
            conds.append(f"type({v}) is str and len({v}.encode()) <= MAX_TEXT")
        elif vtype == wire.T_BYTES:
            conds.append(f"type({v}) is bytes")
        elif vtype == wire.T_LIST:
            conds.append(f"type({v}) is list and 1 <= len({v}) <= MAX_LIST")
        else:
            raise ValueError(f"{name} has an unknown value type {vtype}")
    pairs = ", ".join(f"(k{i}, v{i})" for i in range(len(keys)))
    source = (f"def check(m):\n"
              f"    {pairs}, = m.items()\n"
              f"    if {' and '.join(conds)}:\n"
              f"        return ({', '.join(out)},)\n"
              f"    return None\n")
    exec(compile(source, f"<checker for keys {keys}>", "exec"), env)  # noqa: S102 - our source
    checker: Checker = env["check"]
    return checker
