"""Where every benchmark's JSON goes: written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(out: Path, result: dict) -> None:
    """Write ``result`` as indented JSON to ``out`` (its folder made as needed), replacing it atomically,
    so a run stopped midway never leaves half a file for a resumed run to read."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
