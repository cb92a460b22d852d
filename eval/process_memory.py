"""A process's resident memory as Linux reports it, for the benchmarks that measure memory."""

from __future__ import annotations

from pathlib import Path


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory of process ``pid`` (this one by default), MB: in all (VmRSS), of the heap (RssAnon)
    and of mapped files (RssFile: an index's memory-mapped vectors and lists, counted once per mapping)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "RssAnon", "RssFile")}
