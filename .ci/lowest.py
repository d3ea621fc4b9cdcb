"""Print the lowest versions pyproject.toml allows, as pip constraints (one per line).

CI installs the project once with the newest releases and once with these, so that the lower
bounds in pyproject.toml are tested rather than hoped for.
"""

import re
import sys
import tomllib

#: The extras users install for features (not the tools of the test and docs extras): their
#: lower bounds are promises too.
FEATURE_EXTRAS = ("plot", "search")

with open(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
extras = project.get("optional-dependencies", {})
for requirement in [*project["dependencies"], *(r for e in FEATURE_EXTRAS for r in extras[e])]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)\s*(,.*)?", requirement)
    if match is None:
        sys.exit(f"lowest.py: cannot read a lower bound from {requirement!r}")
    print(f"{match.group(1)}=={match.group(2)}")
