"""Checking a large clean JPEG costs a fraction of its decoded size (peak RSS of a child)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SIDE = 7000
SCRIPT = """
import sys
from pathlib import Path
from imagegate.imaging.inspect import inspect_image
from imagegate.imaging.limits import ImageLimits
def peak():  # VmHWM, not ru_maxrss: that one carries the parent's peak over fork and exec
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])
data = Path(sys.argv[1]).read_bytes()
before = peak()
if sys.argv[2] == "inspect":
    image = inspect_image(data, param="image", limits=ImageLimits())
    assert (image.width, image.height) == (7000, 7000) and image.data is data
print(peak() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_clean_7000_square_jpeg_is_checked_without_a_full_decode(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("L", (SIDE, SIDE), 128).save(buffer, "JPEG", quality=50)
    path = tmp_path / "big.jpg"
    path.write_bytes(buffer.getvalue())
    del buffer

    def peak_growth_kib(mode: str) -> int:
        run = [sys.executable, "-c", SCRIPT, str(path), mode]
        return int(subprocess.run(run, capture_output=True, check=True, text=True).stdout)

    grown = peak_growth_kib("inspect") - peak_growth_kib("read")
    # A full decode holds 49 MB of grey pixels; at 1/8 scale it is under 1 MB.
    assert grown < 16 * 1024
