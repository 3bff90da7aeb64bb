"""Whether each client's TLS session survives an event, asked of a real client: `openssl s_client`, run in the
client's namespace, saves the session it gets before the event and offers it again afterwards. An edge proxy
keeps its session-ticket keys to itself (one process, one PoP), so a session resumes only where it was issued:
a client now served by another PoP, or by a restarted proxy, has to start a new one."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..runtime.state import RunningLab

HTTPS_PORT = 443
WORKERS = 4
TIMEOUT_S = 5.0


class TlsSessions:
    def __init__(self, lab: RunningLab, directory: Path, host: str, clients: list[str],
                 address_of: Callable[[str], str | None]) -> None:
        self.lab, self.directory, self.host, self.clients, self.address_of = lab, directory, host, clients, address_of
        directory.mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        """Each client's new session, stored in the lab's run directory (none for a client that got none)."""
        for client in self.clients:
            (self.directory / f"{client}.pem").unlink(missing_ok=True)
        self._each("-sess_out")

    def resume(self) -> dict[str, bool | None]:
        """Per client: True when the saved session was resumed where it connects now, False when the server
        made a new one, None when it had none saved or could not connect."""
        return self._each("-sess_in")

    def _each(self, flag: str) -> dict[str, bool | None]:
        with ThreadPoolExecutor(WORKERS) as pool:
            return dict(zip(self.clients, pool.map(lambda c: self._one(c, flag), self.clients), strict=True))

    def _one(self, client: str, flag: str) -> bool | None:
        address = self.address_of(client)
        session = self.directory / f"{client}.pem"
        if address is None or (flag == "-sess_in" and not session.exists()):
            return None
        argv = ["openssl", "s_client", "-connect", f"{address}:{HTTPS_PORT}", "-servername", self.host, flag,
                str(session), "-ign_eof"]  # waits for the answer (and the session tickets sent before it)
        try:
            out = subprocess.run(self.lab.exec_argv(client, argv), input=f"GET /cdn-cgi/trace HTTP/1.0\r\nHost: "
                                 f"{self.host}\r\n\r\n", capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None
        if "Reused," in out.stdout:
            return True
        return False if "New," in out.stdout else None
