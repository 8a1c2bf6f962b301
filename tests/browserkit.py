"""Headless Chromium for the HTML report tests: what the browser laid out and painted, read back from the DOM."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and Path(p).exists()), None)
needs_chromium = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def probe(tmp_path: Path, html: str, script: str, *, size: str = "1400,1000") -> Any:
    """Open `html` with `script` appended (it sets `out`), and return `out` as the browser computed it."""
    page = tmp_path / "probed.html"
    code = (f"<script>var out = {{}};\n{script}\nvar pre = document.createElement('pre'); pre.id = 'probe';"
            "pre.textContent = JSON.stringify(out); document.body.appendChild(pre);</script>")
    page.write_text(html.replace("</body>", code + "</body>"), encoding="utf-8")
    dumped = chromium(tmp_path, f"--window-size={size}", "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, dumped.stderr[-2000:]
    return json.loads(match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))
