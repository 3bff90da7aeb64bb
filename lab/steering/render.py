"""The steering plane's configuration files, rendered from its plan (golden-tested in tests/golden/steering/).

gdnsd: one `geoip` map with no GeoIP database, only `nets` (each ISP's client prefix -> its PoP list, see
plan.py), one resource whose datacenters are the PoPs' unicast addresses, each watched by an `http_status`
monitor of the PoP's proxy; the steered name is a DYNA record whose TTL is fixed (`ttl/ttl`: gdnsd would
otherwise shorten it while a PoP's state may change). unbound: a caching resolver with a stub zone for the
lab's zone pointing at gdnsd, no DNSSEC (nothing is signed), control over a unix socket.
"""

from __future__ import annotations

from pathlib import Path

from ..model import DnsSteering
from .plan import DNS_PORT, Resolver, SteeringPlan

RESOURCE = "pops"
MAP = "isps"
SERVICE = "proxy"


def gdnsd_config(sp: SteeringPlan, directory: Path) -> str:
    """gdnsd's `config` file; `directory` holds its run and state directories."""
    cfg = sp.config
    health = cfg.health
    pops = list(sp.unicast)
    nets = "\n".join(f"          {r.network} => [ {', '.join(r.pops)} ]" for r in sp.resolvers.values())
    dcmap = "\n".join(f"          {pop} => {address}" for pop, address in sp.unicast.items())
    return f"""# rendered by anycastlab (lab/steering/render.py): DNS steering for {cfg.zone}
options => {{
  listen => [ {sp.authoritative}:{DNS_PORT} ]
  run_dir => {directory / "run"}
  state_dir => {directory / "state"}
  min_ttl => 1
  zones_default_ttl => {cfg.ttl}
  chaos_response => gdnsd
}}

service_types => {{
  {SERVICE} => {{
    plugin => http_status
    port => 80
    url_path => "{health.path}"
    vhost => {cfg.name}
    interval => {health.interval}
    timeout => {health.timeout}
    down_thresh => {health.down_after}
    ok_thresh => {health.down_after}
    up_thresh => {health.up_after}
  }}
}}

plugins => {{
  geoip => {{
    maps => {{
      {MAP} => {{
        datacenters => [ {', '.join(pops)} ]
        nets => {{
{nets}
        }}
      }}
    }}
    resources => {{
      {RESOURCE} => {{
        map => {MAP}
        service_types => [ {SERVICE} ]
        dcmap => {{
{dcmap}
        }}
      }}
    }}
  }}
}}
"""


def zone_file(sp: SteeringPlan, serial: int = 1) -> str:
    """The zone: the steered name (DYNA through the geoip resource) and the anycast name (a plain A)."""
    cfg = sp.config
    steered = cfg.name.removesuffix("." + cfg.zone)
    anycast = cfg.anycast_name.removesuffix("." + cfg.zone)
    return f"""; rendered by anycastlab (lab/steering/render.py)
$TTL {cfg.ttl}
@        SOA ns1 hostmaster ( {serial} 3600 600 86400 {cfg.ttl} )
@        NS  ns1
ns1      A   {sp.authoritative}
{anycast} {cfg.ttl} A {sp.anycast}
{steered} {cfg.ttl}/{cfg.ttl} DYNA geoip!{RESOURCE}
"""


def unbound_config(cfg: DnsSteering, resolver: Resolver, authoritative: str, directory: Path) -> str:
    """One ISP's unbound: answers its clients on `resolver.address`, asks gdnsd from the same address."""
    r = cfg.resolvers
    serve_expired = "yes" if r.serve_expired else "no"
    return f"""# rendered by anycastlab (lab/steering/render.py): {resolver.isp}'s caching resolver
server:
  interface: {resolver.address}
  port: {DNS_PORT}
  outgoing-interface: {resolver.address}
  access-control: 0.0.0.0/0 allow
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{directory}"
  pidfile: "{directory / "unbound.pid"}"
  logfile: ""
  use-syslog: no
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  qname-minimisation: no
  prefetch: no
  cache-min-ttl: {r.min_ttl}
  cache-max-ttl: {r.max_ttl}
  serve-expired: {serve_expired}
  serve-expired-ttl: {r.serve_expired_ttl}
  do-not-query-localhost: yes
  outgoing-range: 64
  so-reuseport: no

stub-zone:
  name: "{cfg.zone}"
  stub-addr: {authoritative}

remote-control:
  control-enable: yes
  control-interface: "{directory / "unbound.ctl"}"
  control-use-cert: no
"""
