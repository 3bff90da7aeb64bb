"""Link shaping on a running lab: applied at bring-up, changed by `anycastlab link set`, read by `link show`.

The lab's current shaping lives in its run directory as links.json (what each link has now, the
mechanism, the node pids and the releaser's pid), so every verb and the backbone prober see a change the
moment it is made. Changes are serialised by a lock file, checked completely before anything is touched,
applied to both directions of the link, and undone if applying them fails half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from ... import interrupts, units
from ...errors import LabError, UnknownNodeError
from ...plan import Link, Plan
from ...shaping import Shaping
from .. import filelock, handles, paths, procs
from ..handles import NodeHandle
from ..ledger import Ledger
from ..service import Child
from . import kernel
from .kernel import Mechanism
from .service import Releaser

REPORT_FILE = "releaser.json"
RELEASER_LOG = "links-releaser.log"
LOCK_FILE = "links.lock"
ACK_TIMEOUT = 10.0
LOCK_TIMEOUT = 60.0  # longer than one change can take (the ack plus tc and iptables in two nodes)
THREADS = 8
MAX_RESTARTS = 5  # a releaser that keeps dying is left dead (status says so) rather than restarted forever
RESTART_INTERVAL_S = 2.0  # at least this long between restarts, and between checks of a live releaser


def queue_number(plan: Plan, node: str, interface: str) -> int:
    """A node's queue for one interface: its position among the node's interfaces, from 1."""
    names = [i.name for i in plan.nodes[node].interfaces]
    return names.index(interface) + 1


def _link_entry(plan: Plan, link: Link, shaping: Shaping) -> dict[str, Any]:
    return {"a": link.a, "b": link.b, "kind": link.kind,
            "a_interface": link.b, "b_interface": link.a,  # interfaces are named after the other end
            "a_queue": queue_number(plan, link.a, link.b), "b_queue": queue_number(plan, link.b, link.a),
            **shaping.to_json()}


# -- the state file -------------------------------------------------------------------------------------

def read_state(directory: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(paths.links_file(directory).read_text())
    except FileNotFoundError:
        raise LabError(f"this lab has no link state ({paths.links_file(directory)}); was it started before "
                       "link shaping existed?") from None
    return data


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    paths.replace_file(paths.links_file(directory), json.dumps(state, indent=1))


def _locked(directory: Path, timeout: float = LOCK_TIMEOUT) -> contextlib.AbstractContextManager[None]:
    """Hold the lab's link lock; LabError if another change holds it longer than `timeout` (0: one try)."""
    return filelock.locked(directory / LOCK_FILE, timeout, "link change")


def current(directory: Path) -> dict[frozenset[str], Shaping]:
    """Each link's shaping as the running lab has it now (after any `link set`), keyed by its two ends."""
    return {frozenset((e["a"], e["b"])): Shaping.from_json(e) for e in read_state(directory)["links"]}


# -- bring-up -------------------------------------------------------------------------------------------

def start(plan: Plan, directory: Path, nodes: dict[str, NodeHandle], child: Callable[[str, int], None],
          emit: Callable[[str, str], object]) -> None:
    """Detect the mechanism, shape every link the plan asks for, start the releaser if one is needed.

    The rules go in while the releaser starts: with --queue-bypass a rule without a listener passes packets
    untouched, so the order does not matter, and waiting for the releaser last overlaps its start-up."""
    started = time.monotonic()
    pids = {name: nodes[name].pid for name in plan.nodes}
    first = next(iter(plan.nodes))
    mechanism = kernel.detect(pids[first], nodes[first].exec)
    state: dict[str, Any] = {
        "mechanism": mechanism.to_json(), "generation": 1, "releaser": None, "pids": pids,
        "exec": {name: nodes[name].exec for name in plan.nodes}, "netns": nodes[first].netns,
        "links": [_link_entry(plan, link, link.shaping) for link in plan.links],
    }
    _write_state(directory, state)
    if mechanism.delay == "nfqueue":
        state["releaser"] = _spawn_releaser(directory, state, child)
        _write_state(directory, state)
    _apply_all(state, mechanism)
    if state["releaser"] is not None:
        _wait_ack(directory, 1, state["releaser"])
    shaped = [e for e in state["links"] if _active(e, mechanism)]
    emit("links", f"shaping {len(shaped)} of {len(state['links'])} links with {mechanism.name} "
                  f"({mechanism.reason}) in {time.monotonic() - started:.2f} s")


def _spawn_releaser(directory: Path, state: dict[str, Any], child: Callable[[str, int], None]) -> dict[str, Any]:
    """Start the releaser in the first node's namespace (never the host's); returns its state entry.

    It dies with the calling process (the supervisor), so call this only from the supervisor's main thread."""
    node = next(iter(state["pids"]))  # the first node, whose namespace state["netns"] enters
    releaser = Releaser(directory, node, directory / REPORT_FILE, directory / RELEASER_LOG)
    process = releaser.start_in(handles.load(directory)[1][node], Ledger(paths.ledger_file(directory)), Child(child))
    return {"pid": process.pid, "start": process.start, "restarts": 0}


_checked: dict[Path, float] = {}  # run directory -> when ensure_releaser may look again (monotonic)


def ensure_releaser(directory: Path, child: Callable[[str, int], None],
                    emit: Callable[[str, str], object] | None = None) -> int | None:
    """Start the releaser again if it has died; the new pid, or None when nothing was (or could be) done.

    Meant for the supervisor's health loop (its main thread, so the releaser dies with it): cheap when
    called often (the state is read at most every RESTART_INTERVAL_S), never waits for a `link set` in
    progress, and gives up after MAX_RESTARTS, leaving status to say the releaser is not running. The
    NFQUEUE rules stayed in place, so the new releaser's queues take over from --queue-bypass at once."""
    now = time.monotonic()
    if now < _checked.get(directory, 0.0):
        return None
    _checked[directory] = now + RESTART_INTERVAL_S
    try:
        with _locked(directory, timeout=0):
            state = read_state(directory)
            old = state.get("releaser")
            if old is None or procs.is_alive(old["pid"], old["start"]):
                return None
            restarts = int(old.get("restarts", 0))
            if restarts >= MAX_RESTARTS:
                return None
            state["releaser"] = {**_spawn_releaser(directory, state, child), "restarts": restarts + 1}
            _write_state(directory, state)
    except (LabError, FileNotFoundError):  # a change in progress, or the lab going away: next time
        return None
    new: int = state["releaser"]["pid"]
    if emit is not None:
        emit("links", f"link delay releaser pid {old['pid']} had exited: started again as pid {new} "
                      f"(restart {restarts + 1} of at most {MAX_RESTARTS}; see {directory / RELEASER_LOG})")
    return new


def _active(entry: dict[str, Any], mechanism: Mechanism) -> bool:
    shaping = Shaping.from_json(entry)
    return shaping.needs_delay or (shaping.rate_bps is not None and mechanism.rate)


def _end_work(state: dict[str, Any], mechanism: Mechanism) -> dict[str, tuple[list[str], dict[str, int]]]:
    """Per node: the tc lines and the NFQUEUE rules (interface -> queue) its shaped ends need."""
    work: dict[str, tuple[list[str], dict[str, int]]] = {}
    for entry in state["links"]:
        shaping = Shaping.from_json(entry)
        for end in ("a", "b"):
            lines, rules = work.setdefault(entry[end], ([], {}))
            interface = entry[f"{end}_interface"]
            if _active(entry, mechanism):
                lines += kernel.qdisc_commands(interface, shaping, mechanism)
            if mechanism.delay == "nfqueue" and shaping.needs_delay:
                rules[interface] = entry[f"{end}_queue"]
    return work


def _apply_all(state: dict[str, Any], mechanism: Mechanism) -> None:
    work = _end_work(state, mechanism)

    def node(name: str) -> None:
        lines, rules = work[name]
        kernel.apply_qdiscs(state["exec"][name], [line for line in lines if " del " not in f" {line} "])
        kernel.set_nfqueue_rules(state["exec"][name], rules, {})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(node, [n for n, (lines, rules) in work.items() if lines or rules]))


def _wait_ack(directory: Path, generation: int, releaser: dict[str, Any]) -> None:
    """Until this releaser ({pid, start}) reports `generation` applied; 0: until it reports at all, which it
    does only once its signal handlers are in place (SIGHUP before that would end it). A dead or silent
    releaser is an error."""
    pid, start = releaser["pid"], releaser.get("start")

    def reported() -> bool:
        report = releaser_report(directory) or {}
        return report.get("pid") == pid and int(report.get("generation", 0)) >= generation

    procs.wait_for(lambda: reported() or not procs.is_alive(pid, start), ACK_TIMEOUT)
    if reported():
        return
    if not procs.is_alive(pid, start):
        raise LabError(f"the link delay releaser exited (see {directory / RELEASER_LOG})")
    raise LabError(f"the link delay releaser did not apply the change within {ACK_TIMEOUT:.0f} s")


# -- runtime changes ------------------------------------------------------------------------------------

def parse_changes(delay: str | None, jitter: str | None, loss: str | None,
                  rate: str | None) -> dict[str, Any]:
    """CLI strings -> Shaping fields; `--rate none` clears a rate. Bad input raises LabError."""
    try:
        changes: dict[str, Any] = {
            "delay_ms": units.duration_ms(delay) if delay is not None else None,
            "jitter_ms": units.duration_ms(jitter, "jitter") if jitter is not None else None,
            "loss_pct": units.loss_pct(loss) if loss is not None else None,
        }
        if rate is not None:
            changes["rate_bps"] = 0 if rate.strip().lower() in ("none", "off", "0") else units.rate_bps(rate)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    return changes


def _the_link(plan: Plan, a: str, b: str) -> Link:
    for end in (a, b):
        if end not in plan.nodes:
            raise UnknownNodeError(end, list(plan.nodes))
    link = plan.link(a, b)
    if link is None:
        near = sorted({x.b if x.a == a else x.a for x in plan.links if a in (x.a, x.b)})
        raise LabError(f"there is no link between {a} and {b} ({a} has links to: {', '.join(near) or 'none'})")
    return link


def set_carrier(plan: Plan, directory: Path, a: str, b: str, up: bool) -> dict[str, Any]:
    """Take the link between A and B down (both ends' interfaces, as a cut fibre) or up again; the links
    state remembers it for `link show`."""
    from .. import netns

    _the_link(plan, a, b)
    with _locked(directory):
        state = read_state(directory)
        index = next(i for i, e in enumerate(state["links"]) if {e["a"], e["b"]} == {a, b})
        entry = state["links"][index]
        for end in ("a", "b"):
            with netns.iproute(state["pids"][entry[end]]) as ipr:
                found = ipr.link_lookup(ifname=entry[f"{end}_interface"])
                if not found:
                    raise LabError(f"{entry[end]} has no interface {entry[f'{end}_interface']}")
                ipr.link("set", index=found[0], state="up" if up else "down")
        entry = {**entry, "up": up}
        state["links"][index] = entry
        _write_state(directory, state)
    return entry


def set_link(plan: Plan, directory: Path, a: str, b: str, changes: dict[str, Any],
             reset: bool = False) -> dict[str, Any]:
    """Change one link (both directions); with `reset`, back to what the topology derives. Everything is
    checked before anything is touched."""
    link = _the_link(plan, a, b)
    if reset:
        changes = {k: v for k, v in link.shaping.to_json().items() if k in ("delay_ms", "jitter_ms", "loss_pct",
                                                                            "rate_bps")}
        changes["rate_bps"] = changes.get("rate_bps") or 0
    if not any(v is not None for v in changes.values()):
        raise LabError("nothing to change: give --delay, --jitter, --loss, --rate, --reset, --down or --up")
    with _locked(directory):
        state = read_state(directory)
        mechanism = Mechanism.from_json(state["mechanism"])
        if mechanism.delay == "none" and any(changes.get(k) for k in ("delay_ms", "jitter_ms", "loss_pct")):
            raise LabError(f"this lab cannot delay links: {mechanism.reason}")
        if changes.get("rate_bps") and not mechanism.rate:
            raise LabError("this kernel has no TBF qdisc: links cannot be rate-limited")
        releaser = state.get("releaser")
        if mechanism.delay == "nfqueue" and (releaser is None or not procs.is_alive(releaser["pid"],
                                                                                    releaser["start"])):
            raise LabError("the link delay releaser is not running (see links-releaser.log in the run directory)")
        index = next(i for i, e in enumerate(state["links"]) if {e["a"], e["b"]} == {a, b})
        entry = state["links"][index]
        before = Shaping.from_json(entry)
        fields = {k: v for k, v in changes.items() if v is not None}
        if fields.get("rate_bps") == 0:  # `--rate none`
            fields["rate_bps"] = None
        after = replace(before, **fields, source=link.shaping.source if reset else "runtime")
        new_entry = {**entry, **after.to_json()}
        generation = int(state["generation"])
        try:
            _change(directory, state, index, new_entry, generation + 1, before, after, mechanism)
        except BaseException:  # an error, or Ctrl-C half-way
            # Put the old shaping back (a later generation, so the releaser acts on it), as far as it goes;
            # a second Ctrl-C waits for that (bounded: the releaser's ack, then tc and iptables in two nodes).
            with interrupts.held(), contextlib.suppress(LabError, OSError, subprocess.SubprocessError):
                _change(directory, state, index, entry, generation + 2, after, before, mechanism)
            raise
        return {**new_entry, "applied": _active(new_entry, mechanism)}


def _change(directory: Path, state: dict[str, Any], index: int, entry: dict[str, Any], generation: int,
            before: Shaping, after: Shaping, mechanism: Mechanism) -> None:
    """Make one link `after` (it was `before`): the state file, the releaser's queues, then both ends'
    qdiscs and NFQUEUE rules (the releaser first, so a new rule always finds its queue bound)."""
    state = {**state, "links": [*state["links"][:index], entry, *state["links"][index + 1:]],
             "generation": generation}
    _write_state(directory, state)
    _signal_releaser(directory, state)
    for end in ("a", "b"):
        node, interface = state["exec"][entry[end]], entry[f"{end}_interface"]
        queue = entry[f"{end}_queue"]
        kernel.apply_qdiscs(node, kernel.qdisc_commands(interface, after, mechanism))
        if mechanism.delay == "nfqueue":
            kernel.set_nfqueue_rules(node, {interface: queue} if after.needs_delay else {},
                                     {interface: queue} if before.needs_delay else {})


def _end_queue(state: dict[str, Any], node: str) -> int:
    """A free NFQUEUE number in `node` for a link added at run time: one above every queue it uses."""
    used = [e[f"{end}_queue"] for e in state["links"] for end in ("a", "b") if e[end] == node]
    return max(used, default=0) + 1


def _signal_releaser(directory: Path, state: dict[str, Any]) -> None:
    """Have the releaser re-read `state` (already written) and wait until it applied its generation."""
    releaser = state.get("releaser")
    if releaser is not None:
        _wait_ack(directory, 0, releaser)  # a releaser just started again by ensure_releaser may not be ready
        os.kill(releaser["pid"], signal.SIGHUP)
        _wait_ack(directory, int(state["generation"]), releaser)


def add_link(directory: Path, link: Link) -> dict[str, Any]:
    """Shape a link made at run time (a moved client's new access link): its entry, the releaser's queues,
    then both ends' qdiscs and NFQUEUE rules. The veth must exist already."""
    with _locked(directory):
        state = read_state(directory)
        if any({e["a"], e["b"]} == {link.a, link.b} for e in state["links"]):
            raise LabError(f"the lab already has a link between {link.a} and {link.b}")
        mechanism = Mechanism.from_json(state["mechanism"])
        entry = {"a": link.a, "b": link.b, "kind": link.kind, "a_interface": link.b, "b_interface": link.a,
                 "a_queue": _end_queue(state, link.a), "b_queue": _end_queue(state, link.b),
                 **link.shaping.to_json()}
        state = {**state, "links": [*state["links"], entry], "generation": int(state["generation"]) + 1}
        _write_state(directory, state)
        _signal_releaser(directory, state)
        if _active(entry, mechanism):
            for end in ("a", "b"):
                node, interface = state["exec"][entry[end]], entry[f"{end}_interface"]
                kernel.apply_qdiscs(node, kernel.qdisc_commands(interface, link.shaping, mechanism))
                if mechanism.delay == "nfqueue" and link.shaping.needs_delay:
                    kernel.set_nfqueue_rules(node, {interface: entry[f"{end}_queue"]}, {})
        return entry


def remove_link(directory: Path, a: str, b: str) -> dict[str, Any] | None:
    """Forget a link about to be deleted (its NFQUEUE rules, then the releaser's queues); its qdiscs go with
    the veth. None when the lab has no such link (already removed: a restore may run twice)."""
    with _locked(directory):
        state = read_state(directory)
        index = next((i for i, e in enumerate(state["links"]) if {e["a"], e["b"]} == {a, b}), None)
        if index is None:
            return None
        entry = state["links"][index]
        mechanism = Mechanism.from_json(state["mechanism"])
        if mechanism.delay == "nfqueue" and Shaping.from_json(entry).needs_delay:
            for end in ("a", "b"):
                with contextlib.suppress(LabError):  # the interface may be gone already
                    kernel.set_nfqueue_rules(state["exec"][entry[end]], {},
                                             {entry[f"{end}_interface"]: entry[f"{end}_queue"]})
        state = {**state, "links": [e for i, e in enumerate(state["links"]) if i != index],
                 "generation": int(state["generation"]) + 1}
        _write_state(directory, state)
        _signal_releaser(directory, state)
        return dict(entry)


# -- reading --------------------------------------------------------------------------------------------

def releaser_report(directory: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((directory / REPORT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def summary(directory: Path) -> dict[str, Any]:
    """The mechanism in use and whether its releaser runs: one field of `anycastlab status`."""
    try:
        state = read_state(directory)
    except LabError:
        return {"mechanism": "unknown", "reason": "no link state", "shaped_links": 0, "releaser": None}
    mechanism = Mechanism.from_json(state["mechanism"])
    releaser = state.get("releaser")
    return {
        "mechanism": mechanism.name,
        "reason": mechanism.reason,
        "shaped_links": sum(_active(e, mechanism) for e in state["links"]),
        "releaser": None if releaser is None else {
            "pid": releaser["pid"], "running": procs.is_alive(releaser["pid"], releaser["start"]),
            "restarts": int(releaser.get("restarts", 0))},
    }


def show(directory: Path) -> dict[str, Any]:
    """Every link with its shaping now, plus the releaser's per-direction counters when there is one."""
    state = read_state(directory)
    mechanism = Mechanism.from_json(state["mechanism"])
    report = releaser_report(directory) or {"queues": []}
    counters = {(q["node"], q["queue"]): q for q in report["queues"]}
    links = []
    for e in state["links"]:
        shaping = Shaping.from_json(e)
        links.append({
            "a": e["a"], "b": e["b"], "kind": e["kind"], **shaping.to_json(),
            "applied": _active(e, mechanism),  # False: below what the path adds anyway (or no mechanism)
            "up": e.get("up", True),  # False: cut with `link set --down`
            "rate": units.show_rate(shaping.rate_bps),
            "counters": [counters[(e[end], e[f"{end}_queue"])] for end in ("a", "b")
                         if (e[end], e[f"{end}_queue"]) in counters],
        })
    return {**summary(directory), "generation": state["generation"], "links": links}
