"""The edge in a booted lab, with real clients in client namespaces: TLS at the PoP, the cache, the
backbone to the origin, and health-driven withdrawal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from anycastlab.edge import mgmt
from anycastlab.lifecycle import Lab
from anycastlab.runtime import paths, procs
from anycastlab.runtime.ledger import Ledger
from anycastlab.runtime.service import Detached
from anycastlab.services import edge

ANYCAST = "198.51.100.10"
HOST = "www.example.com"
CLI = str(Path(sys.executable).parent / "anycastlab")  # the venv's, whatever PATH says


def curl(lab: Lab, client: str, path: str, *extra: str) -> tuple[int, dict[str, str], str]:
    ca = paths.ca_dir(lab.name) / "ca.pem"
    out = lab.exec(client, ["curl", "-sS", "-m", "10", "--cacert", str(ca), "--resolve", f"{HOST}:443:{ANYCAST}",
                            "-D", "-", *extra, f"https://{HOST}{path}"])
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_tls_at_the_pop_then_miss_then_hit(default_lab: Lab) -> None:
    status = {c["name"]: c["predicted_pop"] for c in default_lab.status()["clients"]}
    for client in ["dtag-c1", "kddi-c2", "vivo-c1"]:
        path = f"/cache/{uuid.uuid4().hex}?max-age=300"
        code, first, _ = curl(default_lab, client, path)
        assert code == 200 and first["cf-cache-status"] == "MISS"
        assert first["cf-pop"] == status[client] and first["cf-ray"].endswith(f"-{status[client]}")
        code, second, _ = curl(default_lab, client, path)
        assert second["cf-cache-status"] == "HIT" and int(second.get("age", "0")) >= 0


def test_trace_names_the_colo_and_client(default_lab: Lab) -> None:
    clients = {c["name"]: c for c in default_lab.status()["clients"]}
    _, _, body = curl(default_lab, "starhub-c1", "/cdn-cgi/trace")
    trace = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
    assert trace["colo"] == clients["starhub-c1"]["predicted_pop"]
    assert trace["ip"] == clients["starhub-c1"]["address"]
    assert trace["tls"] == "TLSv1.3" and trace["sni"] == HOST and trace["http"] == "http/1.1"


def test_openssl_tls13_and_resumption(default_lab: Lab, tmp_path: object) -> None:
    ca = paths.ca_dir(default_lab.name) / "ca.pem"
    sess = f"/tmp/anycastlab-sess-{uuid.uuid4().hex}"
    try:
        base = ["openssl", "s_client", "-connect", f"{ANYCAST}:443", "-servername", HOST, "-CAfile", str(ca),
                "-alpn", "http/1.1", "-ign_eof"]
        request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
        first = default_lab.exec("optus-c1", ["sh", "-c", f"printf '{request}' | " + " ".join(base)
                                              + f" -sess_out {sess}"])
        assert "Protocol version: TLSv1.3" in first.stdout or "TLSv1.3" in first.stdout, first.stdout[-2000:]
        assert "Verify return code: 0 (ok)" in first.stdout
        second = default_lab.exec("optus-c1", ["sh", "-c", f"printf '{request}' | " + " ".join(base)
                                               + f" -sess_in {sess}"])
        assert "Reused, TLSv1.3" in second.stdout, second.stdout[-2000:]
    finally:
        if os.path.exists(sess):
            os.unlink(sess)


def test_origin_fetches_cross_only_the_backbone(default_lab: Lab) -> None:
    plan = default_lab.running.plan
    origin = plan.nodes[plan.topology.origin.name]
    edge_routers = {n.name for n in plan.pops} | {origin.name}
    owner = {str(i.address.ip): n.name for n in plan.routers for i in n.interfaces}
    owner.update({str(n.loopback): n.name for n in plan.routers})
    for pop in plan.pops:
        out = default_lab.exec(pop.name, ["traceroute", "-n", "-q", "1", "-w", "1", "-m", "8", str(origin.loopback)])
        hops = [line.split()[1] for line in out.stdout.splitlines()[1:] if len(line.split()) > 1]
        assert hops and hops[-1] == str(origin.loopback), out.stdout
        crossed = [owner.get(h, h) for h in hops]
        assert set(crossed) <= edge_routers, f"{pop.name} -> origin crossed {crossed}"


def test_origin_down_serves_stale(default_lab: Lab) -> None:
    path = f"/cache/{uuid.uuid4().hex}?max-age=1&sie=600"
    code, first, body = curl(default_lab, "comcast-c1", path)
    assert code == 200 and first["cf-cache-status"] == "MISS"
    control = paths.lab_dir(default_lab.name) / "origin" / "control.sock"
    mgmt.call(control, "POST", "/mode", {"mode": "down"})
    try:
        time.sleep(1.5)  # past max-age
        code, stale, stale_body = curl(default_lab, "comcast-c1", path)
        assert code == 200 and stale["cf-cache-status"] == "STALE" and stale_body == body
    finally:
        mgmt.call(control, "POST", "/mode", {"mode": "ok"})


def test_killing_a_proxy_withdraws_its_pop_and_clients_move(default_lab: Lab) -> None:
    lab = default_lab.running
    ledger = Ledger(paths.ledger_file(lab.directory))
    before = {c["name"]: c["predicted_pop"] for c in default_lab.status()["clients"]}
    entry = [e for e in ledger.of_kind("process") if e.name == "syd/proxy"][-1]
    os.kill(entry.data["pid"], signal.SIGKILL)
    killed = time.monotonic()
    try:
        def optus_moved() -> bool:
            out = default_lab.exec("optus-c1", ["dig", "+short", "+time=1", "+tries=1", f"@{ANYCAST}", "id.server",
                                                "CH", "TXT"])
            return out.stdout.strip().strip('"') not in ("", "syd")

        assert procs.wait_for(optus_moved, 10, interval=0.05), "optus clients did not leave syd"
        moved_after = time.monotonic() - killed
        after = {c["name"]: c["predicted_pop"] for c in default_lab.status()["clients"]}
        assert next(p for p in default_lab.status()["pops"] if p["name"] == "syd")["announcing"] is False
        assert after["optus-c1"] not in ("syd", None) and after["dtag-c1"] == before["dtag-c1"]
        print(f"optus-c1 left syd {moved_after:.2f} s after its proxy was killed")
    finally:
        edge.Proxy(lab.plan, lab.name, "syd").start(lab, Detached(ledger))

    def syd_back() -> bool:
        return next(c for c in default_lab.status()["clients"] if c["name"] == "optus-c1")["predicted_pop"] == "syd"

    assert procs.wait_for(syd_back, 20, interval=0.2), "syd was not re-announced once its proxy was healthy"
    events = paths.events_file(lab.directory).read_text().splitlines()
    health = [json.loads(e)["message"] for e in events if json.loads(e)["stage"] == "health"]
    assert "syd: proxy unhealthy, withdrawn" in health and "syd: proxy healthy, announcing" in health


def test_purge_and_stats_verbs_act_on_the_pop_that_served(default_lab: Lab) -> None:
    """What an operator does: fetch, read the PoP's counters, purge the URL, and see the next fetch miss."""
    client = "comcast-c2"
    pop = {c["name"]: c["predicted_pop"] for c in default_lab.status()["clients"]}[client]
    path = f"/cache/{uuid.uuid4().hex}?max-age=300"
    stats_cmd = [CLI, "stats", "--lab", default_lab.name, "--pop", pop, "--json"]
    before = json.loads(default_lab_cli(stats_cmd))
    assert curl(default_lab, client, path)[1]["cf-cache-status"] == "MISS"
    assert curl(default_lab, client, path)[1]["cf-cache-status"] == "HIT"
    after = json.loads(default_lab_cli(stats_cmd))
    assert after["cache_status"].get("HIT", 0) >= before["cache_status"].get("HIT", 0) + 1
    assert after["origin_fetches"] >= before["origin_fetches"] + 1
    out = default_lab_cli([CLI, "purge", "--lab", default_lab.name, "--pop", pop,
                           "--url", f"https://{HOST}{path}"])
    assert "purged 1 object" in out
    assert curl(default_lab, client, path)[1]["cf-cache-status"] == "MISS"


def default_lab_cli(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout
