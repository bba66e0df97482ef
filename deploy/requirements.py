"""Print the requirements of vitalens with the given extras, one per line, from pyproject.toml (stdlib only).

Why: the container build installs the dependencies in a layer of their own, before the source is copied, so a
change to ``src/`` rebuilds one small layer instead of reinstalling torch and everything else.

Usage: python3 deploy/requirements.py pyproject.toml all > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    project = tomllib.load(open(pyproject, "rb"))["project"]  # noqa: SIM115 - a one-shot script
    optional = project.get("optional-dependencies", {})
    name = project["name"]
    out: list[str] = list(project.get("dependencies", []))
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in optional.get(extra, []):
            self_ref = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", req.strip())
            if self_ref:
                todo.extend(x.strip() for x in self_ref.group(1).split(","))
            else:
                out.append(req)
    return sorted(set(out))


if __name__ == "__main__":
    sys.stdout.write("\n".join(requirements(sys.argv[1], sys.argv[2].split(","))) + "\n")
