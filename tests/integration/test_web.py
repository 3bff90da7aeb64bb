"""`anycastlab web` on a real default lab, in Debian's headless Chromium driven by Selenium (the system
chromedriver: nothing is downloaded): the page loads without console errors, shows every client on the PoP a
real probe measures, follows a `withdraw` drill run from the CLI in another process within 2 s of the moves
its probes record, and the server answers malformed requests with a 4xx and keeps serving. Screenshots go to
reports/web/ (ANYCASTLAB_ARTIFACTS overrides)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import run_probe

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ANYCASTLAB_ARTIFACTS", str(ROOT / "reports"))) / "web"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,800"]
ROWS = "return Object.fromEntries([...document.querySelectorAll('#catchments tr[data-client]')]" \
       ".map(r => [r.dataset.client, r.dataset.pop]))"
MAP = "return Object.fromEntries([...document.querySelectorAll('#clients g[data-client]')]" \
      ".map(g => [g.dataset.client, g.dataset.pop]))"
# Every change of a client's PoP on the page, timed by the browser as it happens (same machine clock).
OBSERVE = """
window.__changes = [];
const seen = {};
const note = () => {
  for (const r of document.querySelectorAll('#catchments tr[data-client]')) {
    if (seen[r.dataset.client] !== r.dataset.pop) {
      seen[r.dataset.client] = r.dataset.pop;
      window.__changes.push([Date.now() / 1000, r.dataset.client, r.dataset.pop]);
    }
  }
  const fra = document.querySelector('#pops tr[data-pop="fra"] td:nth-child(2)');
  if (fra) window.__changes.push([Date.now() / 1000, '#fra-bgp', fra.textContent]);
  const name = document.querySelector('#pops tr[data-pop="fra"] td:nth-child(1)');
  if (name) window.__changes.push([Date.now() / 1000, '#fra-name', name.textContent]);
};
new MutationObserver(note).observe(document.querySelector('main'), {subtree: true, childList: true,
                                                                     attributes: true, characterData: true});
note();
"""


@pytest.fixture(scope="module")
def web(default_lab: Lab) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([sys.executable, "-m", "anycastlab", "web", "--lab", default_lab.name, "--listen",
                             "127.0.0.1:0", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"web did not start: {proc.stderr.read() if proc.stderr else ''}"
        url = json.loads(line)["url"]
        assert url.startswith("http://127.0.0.1:")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("Debian's chromium and chromium-driver are needed (make deps installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="anycastlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(fn: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def errors_in(console: list[dict[str, Any]]) -> list[str]:
    return [entry["message"] for entry in console if entry.get("level") == "SEVERE"]


def test_the_page_shows_every_client_on_its_measured_pop(default_lab: Lab, web: tuple[Any, str], browser: Any) -> None:
    _, url = web
    browser.get(url)
    clients = [c.name for c in default_lab.plan.clients]
    shown = wait_for(lambda: (rows := browser.execute_script(ROWS)) and all(rows.get(c) for c in clients) and rows,
                     15)
    assert shown, f"clients without a PoP on the page: {browser.execute_script(ROWS)}"
    measured = {c.name: c.pop for c in run_probe(default_lab.running, ["dns", "census"]).clients}
    assert all(measured.values()), measured
    # the page and an independent probe agree (the catchment is stable with no fault in place)
    page = wait_for(lambda: (rows := browser.execute_script(ROWS)) == measured and rows, 5)
    assert page == measured
    assert browser.execute_script(MAP) == measured  # the map's client markers say the same
    pops = browser.execute_script("return [...document.querySelectorAll('#pops tr[data-pop]')]"
                                  ".map(r => r.dataset.pop + ' ' + r.children[1].textContent)")
    assert pops == [f"{p.name} announcing" for p in default_lab.plan.pops]
    want = f"none: all {len(default_lab.plan.sessions())} sessions Established"  # every session asked, none down
    down = lambda: browser.find_element("id", "down").text  # noqa: E731
    assert wait_for(lambda: down() == want, 10), down()
    assert browser.find_elements("css selector", "#world path.land"), "no world outline drawn"
    for role in ("pop", "transit", "eyeball", "origin"):
        assert browser.find_elements("css selector", f"#nodes g.node.{role}"), role
    # not colour alone: focusing a client shows its PoP's code
    first = browser.find_element("css selector", "#clients g[data-client]")
    browser.execute_script("arguments[0].focus()", first)
    tip = browser.find_element("id", "tip")
    assert measured[first.get_attribute("data-client")].upper() in tip.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "web-default.png"))
    assert errors_in(browser.get_log("browser")) == []


def test_a_withdraw_drill_run_from_the_cli_shows_up_live(default_lab: Lab, web: tuple[Any, str], browser: Any,
                                                         tmp_path: Path) -> None:
    _, url = web
    browser.get(url)
    wait_for(lambda: all(browser.execute_script(ROWS).values()), 15)
    browser.execute_script(OBSERVE)
    report = tmp_path / "withdraw"
    drill = subprocess.Popen([sys.executable, "-m", "anycastlab", "drill", "run", "--lab", default_lab.name,
                              str(ROOT / "topologies" / "drills" / "withdraw.yaml"), "--report", str(report)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banners: list[str] = []
    probes_seen: list[str] = []
    shot = False
    try:
        while drill.poll() is None:
            banners.append(browser.find_element("id", "banner").text)
            probes_seen.append(browser.find_element("id", "tl-note").text)
            if not shot and "fail" in banners[-1]:
                time.sleep(0.8)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(ARTIFACTS / "web-withdraw-during.png"))
                shot = True
            time.sleep(0.3)
        out = drill.stdout.read() if drill.stdout else ""
    finally:
        if drill.poll() is None:
            drill.send_signal(signal.SIGINT)
            drill.wait(60)
    assert drill.returncode == 0, out
    time.sleep(1.5)
    browser.save_screenshot(str(ARTIFACTS / "web-withdraw-after.png"))
    changes = browser.execute_script("return window.__changes")
    data = json.loads((report / "report.json").read_text())
    fault = data["fault_unix"]
    moved = {c["name"]: c["pop_after"] for c in data["clients"] if c["pop_after"] != c["pop_before"]}
    assert moved, "the withdraw drill moved no client"
    records = [json.loads(line) for line in (report / "probes.jsonl").read_text().splitlines()]
    for client, new_pop in moved.items():
        # when the probes recorded the move: the first answer from the new PoP after the fault, as it arrived
        first = next(r for r in records if r["client"] == client and r["t"] >= 0 and r["pop"] == new_pop)
        recorded = fault + first["t"] + first["rtt_ms"] / 1000
        shown = next((t for t, c, pop in changes if c == client and pop == new_pop and t >= fault), None)
        assert shown is not None, f"{client} never showed {new_pop} on the page: {changes}"
        assert shown - recorded <= 2.0, f"{client} moved to {new_pop} at {recorded:.3f}, page {shown:.3f}"
        print(f"page: {client} on {new_pop} {shown - recorded:+.3f} s after the probes recorded it")
    # the fault itself: marked on fra within 1 s of its injection, fra's announcement seen gone (FRA asked every
    # second while a drill runs), and both back at the end
    marked = next((t for t, c, text in changes if c == "#fra-name" and "⚡ withdraw" in text), None)
    assert marked is not None and marked - fault <= 1.0, (marked, fault)
    withdrawn = next((t for t, c, text in changes if c == "#fra-bgp" and text == "NOT announcing"), None)
    assert withdrawn is not None and withdrawn - fault <= 2.5, (withdrawn, fault)
    fra = [text for _, c, text in changes if c == "#fra-bgp"]
    names = [text for _, c, text in changes if c == "#fra-name"]
    assert fra[-1] == "announcing" and names[-1] == "fra", (fra[-3:], names[-3:])
    print(f"page: fault marked {marked - fault:+.3f} s, withdrawal seen {withdrawn - fault:+.3f} s after the fault")
    assert any("Drill withdraw running" in b and "fail withdraw fra" in b for b in banners), banners
    assert any("passed" in b for b in [browser.find_element("id", "banner").text]), "no verdict shown at the end"
    counts = [int(t.split(":", 1)[1].split()[0]) for t in probes_seen if t.startswith("withdraw:")]
    assert len(counts) > 3 and counts[-1] > counts[0], f"the timeline did not grow: {probes_seen}"
    assert errors_in(browser.get_log("browser")) == []


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_a_client_moved_from_the_cli_moves_on_the_page(default_lab: Lab, web: tuple[Any, str], browser: Any) -> None:
    _, url = web
    browser.get(url)
    row = ("const r = document.querySelector('#catchments tr[data-client=\"dtag-c1\"]');"
           "return r && [r.children[1].textContent, r.dataset.pop, r.children[3].textContent]")
    assert wait_for(lambda: (got := browser.execute_script(row)) and got[1] == "fra" and got, 15)
    cli = str(Path(sys.executable).parent / "anycastlab")
    out = subprocess.run([cli, "move", "dtag-c1", "comcast", "--lab", default_lab.name], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    try:
        # the map is redrawn with the client on comcast, predicted and measured at iad
        moved = wait_for(lambda: (got := browser.execute_script(row)) and got[0].startswith("comcast")
                         and got[1] == "iad" and got, 15)
        assert moved and moved[2] == "iad", browser.execute_script(row)
        with urllib.request.urlopen(url + "api/topology", timeout=5) as resp:
            topo = json.loads(resp.read())
        assert {"a": "comcast", "b": "dtag-c1", "kind": "access"} in topo["links"]
        assert next(n for n in topo["nodes"] if n["name"] == "dtag-c1")["isp"] == "comcast"
    finally:
        back = subprocess.run([cli, "move", "dtag-c1", "--home", "--lab", default_lab.name], capture_output=True,
                              text=True, timeout=60)
    assert back.returncode == 0, back.stderr
    assert wait_for(lambda: (got := browser.execute_script(row)) and got[0].startswith("dtag") and got[1] == "fra", 15)
    assert errors_in(browser.get_log("browser")) == []


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(web: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = web
    port = int(url.rsplit(":", 1)[1].strip("/"))
    for request in (b"GARBAGE\x00\x01 / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
        status = raw(port, request).split(b" ", 2)[1]
        assert status.startswith(b"4"), (request[:40], status)
    for path, method in (("/api/state", "POST"), ("/static/../../../etc/passwd", "GET"), ("/nothing", "GET")):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + path, method=method, data=b"x"
                                                          if method == "POST" else None), timeout=5)
        assert 400 <= refused.value.code < 500, (path, refused.value.code)
    assert proc.poll() is None
    with urllib.request.urlopen(url + "api/state", timeout=5) as answer:
        assert answer.status == 200 and "clients" in json.loads(answer.read())
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200 and b"anycastlab" in answer.read()


def test_the_server_yields_the_cpu_to_the_lab(web: tuple[subprocess.Popen[str], str]) -> None:
    """It runs niced (and its vtysh calls with it), below the lab's routers and releaser."""
    import psutil

    proc, _ = web
    assert psutil.Process(proc.pid).nice() >= psutil.Process().nice() + 10


def test_sigterm_stops_the_server_with_143(default_lab: Lab) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "anycastlab", "web", "--lab", default_lab.name, "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and "serving lab" in proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 143
