"""The smallest valid topology, as text: the base that model and link tests change one thing in, and
how those tests load a variant of it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from anycastlab.errors import TopologyError
from anycastlab.model import load_topology

GOOD = """\
name: t
transits:
  - {name: ta, asn: 64510, peers: [tb]}
  - {name: tb, asn: 64511}
pops:
  - name: ams
    upstreams: [ta]
  - name: ord
    upstreams: [tb]
eyeballs:
  - {name: ispa, asn: 64520, upstreams: [ta], clients: 2}
origin:
  upstreams: [tb]
  pops: [ord]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_for(tmp_path: Path, text: str) -> TopologyError:
    """The one error loading `text` raises (the test fails if it loads)."""
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text))
    return info.value
