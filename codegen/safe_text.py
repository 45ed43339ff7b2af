"""Text that reaches a generated file, made safe for that file's language.

A generated program folder holds a Makefile (run by make and, through its
recipes, by sh) and C sources.  Every string that comes from outside maestro
(the NF's file name, -D names and values, object names from an analysis
report) passes through one of these functions: it is escaped for the
language, or refused with a `GenerateError`-style message naming the rule it
breaks.  Nothing is written verbatim.
"""
from __future__ import annotations

import re
import shlex
from typing import Mapping

from analyses.errors import MaestroError


class UnsafeTextError(MaestroError):
    """A name or value that cannot be written safely into a generated file."""


#: An NF name (its file's stem): it names nf/<name>.c in the Makefile.
NF_NAME_RULE = "letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (at most 64)"
_NF_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: A -D name: a C identifier (a function-like macro cannot be given with -D NAME=VALUE).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Characters a -D value cannot hold in a Makefile line: control characters
#: end or split the line, '#' starts a make comment.
_BAD_DEFINE_VALUE = re.compile(r"[\x00-\x1f\x7f#]")


def check_nf_name(name: str) -> str:
    """`name` if it can name the NF in a Makefile and a file name, else UnsafeTextError."""
    if not _NF_NAME.fullmatch(name):
        raise UnsafeTextError(f"the NF name {name!r} (its file's name without .c) cannot be used in a "
                              f"generated program: it must be {NF_NAME_RULE}; rename the file")
    return name


def check_name(name: str, what: str) -> str:
    """`name` if it can be a file name in a Makefile (NF_NAME_RULE), else UnsafeTextError."""
    if not _NF_NAME.fullmatch(name):
        raise UnsafeTextError(f"{what} cannot be used in a generated program: {name!r} must be "
                              f"{NF_NAME_RULE}")
    return name


def check_define(name: str, value: str) -> None:
    """UnsafeTextError unless -D name=value can be written into a Makefile."""
    if not _IDENTIFIER.fullmatch(name):
        raise UnsafeTextError(f"bad -D name {name!r}: it must be a C identifier "
                              "(letters, digits and '_', not starting with a digit)")
    if _BAD_DEFINE_VALUE.search(value):
        raise UnsafeTextError(f"bad -D value {value!r} for {name}: it may not contain '#' or control "
                              "characters (newlines, tabs, NUL)")


def makefile_define_flags(defines: Mapping[str, object] | None) -> str:
    """The -D flags as text for a Makefile variable that a recipe passes to sh:
    each flag is shell-quoted (shlex), then '$' doubled so make expands nothing."""
    flags = []
    for name, value in sorted((defines or {}).items()):
        check_define(str(name), str(value))
        flags.append(shlex.quote(f"-D{name}={value}").replace("$", "$$"))
    return " ".join(flags)


def c_string(text: str) -> str:
    """The body of a C string literal holding `text` (UTF-8, escaped octal
    for every byte outside printable ASCII, and for quotes and backslashes)."""
    out = []
    for byte in str(text).encode():
        char = chr(byte)
        if char in '"\\?':  # '?' too, so no trigraph can form
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def c_comment(text: str) -> str:
    """`text` fit for inside a /* */ comment on one line: no '*/', no line break."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", str(text)).replace("*/", "* /").replace("/*", "/ *")
