"""The `anycastlab` command: a group whose verbs each live in their own module.

Verbs are imported only when run, so `anycastlab status` does not pay for scapy or the proxy; the help
listing uses the one-line summaries below instead of importing every verb.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

# verb -> ("module:attribute", one-line summary). Add a verb by adding its module and one line here.
VERBS: dict[str, tuple[str, str]] = {
    "up": ("anycastlab.cli.up:up", "Boot a topology and wait until the lab is ready."),
    "down": ("anycastlab.cli.down:down", "Stop everything the lab started."),
    "clean": ("anycastlab.cli.clean:clean", "Recover after a crash, from the lab's ledger."),
    "status": ("anycastlab.cli.status:status", "BGP sessions, announcing PoPs, predicted catchments."),
    "nodes": ("anycastlab.cli.nodes:nodes", "List the lab's nodes and addresses."),
    "exec": ("anycastlab.cli.exec_:exec_", "Run a command inside a node."),
    "vtysh": ("anycastlab.cli.vtysh:vtysh", "FRR's shell on a router."),
    "validate": ("anycastlab.cli.validate:validate", "Check a topology file without creating anything."),
    "predict": ("anycastlab.cli.predict:predict", "Expected catchment from the AS graph alone (boots nothing)."),
    "labs": ("anycastlab.cli.labs:labs", "List every lab on this machine (ready, starting or crashed)."),
    "proxy": ("anycastlab.cli.proxy:proxy", "Run the edge proxy standalone."),
    "origin": ("anycastlab.cli.origin:origin", "Run the origin server standalone."),
    "purge": ("anycastlab.cli.purge:purge", "Purge a PoP's cache by URL, tag or everything."),
    "stats": ("anycastlab.cli.stats:stats", "Per-PoP proxy counters."),
    "ca": ("anycastlab.cli.ca:ca", "Print the path of the lab's CA certificate."),
    "drill": ("anycastlab.cli.drill:drill", "Run scripted PoP-failure drills and report what clients saw."),
    "probe": ("anycastlab.cli.probe:probe", "Measure which PoP each client lands on (dns, http, census, traceroute)."),
    "move": ("anycastlab.cli.move:move", "Move a client to another ISP at run time (a travelling user), or home."),
    "link": ("anycastlab.cli.link:link", "Per-link delay, jitter, loss and rate: show, or set at runtime."),
    "graph": ("anycastlab.cli.graph:graph", "Draw the catchment map: clients coloured by their measured PoP."),
    "backbone": ("anycastlab.cli.backbone:backbone", "Backbone RTTs, costs and paths; smart routing, tiered cache."),
    "compare": ("anycastlab.cli.compare:compare", "Time direct-to-origin vs PoP hit, miss, smart routing, tiered."),
    "images": ("anycastlab.cli.images:images", "Build and list the node images of the docker runtime."),
    "web": ("anycastlab.cli.web:web", "Serve a live page of the lab: map, catchments, PoPs, drills as they happen."),
    "generate": ("anycastlab.cli.generate:generate", "Generate a world topology in real cities (seeded)."),
    "ddos": ("anycastlab.cli.ddos:ddos", "A bounded attack from bots in the ISPs: per-PoP share, policies."),
    "coverage": ("anycastlab.cli.coverage:coverage", "RTT to the anycast PoP vs every PoP's unicast: inflation."),
    "steering": ("anycastlab.cli.steering:steering", "Anycast against DNS-based steering: the same fault, measured."),
}


def _available(name: str) -> bool:
    module = VERBS[name][0].split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's own ending, with every error worded as the verbs word theirs: one `error: ...` line
        (click prints `Error:`; a usage error keeps its usage line and hint above it). Exit statuses are
        click's: 1 for an error, 2 for a bad option; an unhandled Ctrl-C exits 130, not 1."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            if exc.ctx is not None:
                hint = f"Try '{exc.ctx.command_path} {exc.ctx.help_option_names[0]}' for help."
                click.echo(f"{exc.ctx.get_usage()}\n{hint}\n", err=True)
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
            click.echo("interrupted" if interrupted else "aborted", err=True)
            sys.exit(130 if interrupted else 1)
        sys.exit(result if isinstance(result, int) else 0)

    def list_commands(self, _ctx: click.Context) -> list[str]:
        return sorted(name for name in VERBS if _available(name))

    def get_command(self, _ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS or not _available(cmd_name):
            return None
        module_name, attr = VERBS[cmd_name][0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, VERBS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anycastlab")
def cli() -> None:
    """An anycast edge-network lab: real BGP, shared anycast PoPs, probes and drills."""
