"""The lab's state as a user asks for it: sessions per router, which PoPs announce, where clients land."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import observe
from .errors import LabError
from .plan import client_address
from .runtime.links.control import summary as link_summary
from .runtime.state import RunningLab


def lab_status(lab: RunningLab) -> dict[str, Any]:
    plan = lab.plan

    def router(name: str) -> dict[str, Any]:
        node = plan.nodes[name]
        try:
            found = observe.sessions(plan, name, lab.vty(name))
            sessions = [{"peer": s.peer, "address": s.address, "state": s.state, "uptime_ms": s.uptime_ms,
                         "prefixes_received": s.prefixes_received} for s in found]
        except LabError as exc:
            sessions = [{"peer": nb.name, "address": str(nb.address), "state": f"unknown ({exc})",
                         "uptime_ms": 0, "prefixes_received": 0} for nb in node.neighbors]
        return {"name": name, "role": node.role, "asn": node.asn, "loopback": str(node.loopback),
                "sessions": sessions}

    def pop(name: str) -> dict[str, Any]:
        try:
            on = observe.announcing(plan, lab.vty(name))
        except LabError:
            on = False
        return {"name": name, "announcing": on, "community": plan.pop_community(name),
                "unicast": str(plan.unicast_of(name))}

    def isp_prediction(isp: str) -> tuple[str, str | None]:
        try:
            return isp, observe.predicted_pop(plan, isp, lab.vty)
        except LabError:
            return isp, None

    with ThreadPoolExecutor(8) as pool:
        routers = list(pool.map(router, [r.name for r in plan.routers]))
        pops = list(pool.map(pop, [p.name for p in plan.pops]))
        predictions = dict(pool.map(isp_prediction, [e.name for e in plan.eyeballs]))
    clients = [{"name": c.name, "isp": c.isp, "address": str(client_address(c)),
                "predicted_pop": predictions.get(c.isp or ""),
                "predicted_pops": (predictions.get(c.isp or "") or "").split(observe.TIE)
                if predictions.get(c.isp or "") else []} for c in plan.clients]
    return {
        "lab": lab.name,
        "runtime": lab.runtime,
        "anycast": str(plan.anycast.ip),
        "asn": plan.asn,
        "routers": routers,
        "pops": pops,
        "clients": clients,
        "links": link_summary(lab.directory),  # which shaping mechanism is in use
    }
