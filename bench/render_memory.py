"""Peak RSS of one render, in a fresh process: `python -m bench.render_memory PATH HEIGHT file|bytes`.

tracemalloc misses Pillow's C allocations, so this compares resident-set sizes: the
high-water mark just before the render with the one just after, and prints JSON. Linux
carries getrusage's ru_maxrss across fork and exec (a child of a big benchmark process
starts with its parent's peak), so where /proc allows, the peak is reset first
(`/proc/self/clear_refs`) and read as VmHWM; getrusage is the fallback.
"""

from __future__ import annotations

import json
import re
import resource
import sys
from pathlib import Path

from imagify.adapters.pillow_render import render_thumbnail


def reset_high_water() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        return True
    except OSError:
        return False


def high_water_mib(proc: bool) -> float:
    if proc:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    path, height, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    proc = reset_high_water()
    before = high_water_mib(proc)
    if source == "file":
        with open(path, "rb") as f:
            thumb = render_thumbnail(f, height)
    else:
        with open(path, "rb") as f:
            data = f.read()
        thumb = render_thumbnail(data, height)
    after = high_water_mib(proc)
    print(json.dumps({"before_mib": before, "after_mib": after, "extra_mib": after - before,
                      "thumbnail": [thumb.width, thumb.height], "source": "VmHWM" if proc else "ru_maxrss"}))  # fmt: skip


if __name__ == "__main__":
    main()
