# anycastlab: `make up` and `make test` install whatever is missing (idempotently), then act.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     ?= .venv
PY       := $(VENV)/bin/python
PYTHON   ?= python3
TOPOLOGY ?=
PYTEST_ARGS ?=
RUNTIME  ?= netns
DOCKERD  := images/dockerd.sh
# Only for building images: mmdebstrap makes the Debian base when no registry can be reached.
IMAGE_APT_PKGS := mmdebstrap

# Debian/Ubuntu packages the lab, its tests and its benchmarks use.
APT_PKGS := frr mininet iproute2 iptables tcpdump iputils-ping traceroute bind9-dnsutils curl openssl \
            graphviz python3-venv python3-dev gcc libnetfilter-queue-dev nginx-light wrk procps psmisc \
            ca-certificates util-linux gdnsd unbound
# The web view's browser tests: Debian's headless Chromium and its driver (Selenium is given their paths).
APT_PKGS += chromium chromium-driver
# `anycastlab ddos`: the bots' packet generator (bounded: -c count, -i interval; never --flood).
APT_PKGS += hping3

SOURCES := $(shell find lab cli -name '*.py' 2>/dev/null) pyproject.toml

.PHONY: help deps system venv web-assets docker image up down clean status test unit integration lint bench conformance drills fuzz

help:
	@echo "make up      install what is missing, then boot the default topology (as root; RUNTIME=docker for containers)"
	@echo "make docker  a Docker daemon (the one that answers, or a private one) and the node images"
	@echo "make image   the runner image only (anycastlab/runner: the whole tool in one privileged container)"
	@echo "make test    install what is missing, then run lint, unit and integration tests (as root)"
	@echo "make down    stop the running lab"
	@echo "make bench   benchmarks (bring-up, teardown, RSS per router, proxy vs nginx)"

deps: system venv web-assets

# The web view's map libraries (world-atlas, d3-geo, topojson-client), pinned by lab/web/package-lock.json, from
# npm into lab/web/node_modules and copied to lab/web/static/vendor (neither is in git); the page never fetches
# anything else. npm runs only when the lock file is newer than the copy (apt's nodejs and npm if npm is missing).
WEB := lab/web
WEB_VENDOR_FILES := internmap/dist/internmap.min.js d3-array/dist/d3-array.min.js d3-geo/dist/d3-geo.min.js \
                    topojson-client/dist/topojson-client.min.js world-atlas/land-110m.json world-atlas/countries-110m.json

web-assets: $(WEB)/static/vendor/.installed

$(WEB)/static/vendor/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory system APT_PKGS="nodejs npm"
	@cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@mkdir -p $(WEB)/static/vendor && cp $(addprefix $(WEB)/node_modules/,$(WEB_VENDOR_FILES)) $(WEB)/static/vendor/
	@touch $@

# apt-get only runs when a package is missing. policy-rc.d keeps a fresh frr install from starting
# FRR's own service in the host's namespace: the lab starts its daemons inside its own namespaces.
system:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "apt-get install failed for:$$missing" >&2; exit 1; }; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: $(SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -e '.[dev]' --config-settings editable_mode=strict > $(VENV)/pip.log 2>&1 \
	  || { cat $(VENV)/pip.log; exit 1; }
	@touch $@

# A daemon that answers is used as it is; otherwise images/dockerd.sh installs docker.io and starts one
# that leaves the host's root namespace alone (no bridge, no iptables, no ip_forward). Then the images:
# a no-op when their input-hash tags exist.
docker: deps
	@$(MAKE) --no-print-directory system APT_PKGS="$(IMAGE_APT_PKGS)"
	@$(DOCKERD) start >/dev/null
	$(VENV)/bin/anycastlab images build

# The runner image alone (FROM the router image, which it builds too if missing): the whole tool for
# `docker run --privileged anycastlab/runner ...`. Not part of `make docker`: the docker runtime never runs it.
image: deps
	@$(MAKE) --no-print-directory system APT_PKGS="$(IMAGE_APT_PKGS)"
	@$(DOCKERD) start >/dev/null
	$(VENV)/bin/anycastlab images build runner

up: deps $(if $(filter docker,$(RUNTIME)),docker)
	$(VENV)/bin/anycastlab up $(TOPOLOGY) $(if $(filter docker,$(RUNTIME)),--runtime docker)

# Stops the daemon only if make started it and no container runs on it any more.
down: venv
	@rc=0; $(VENV)/bin/anycastlab down || rc=$$?; $(DOCKERD) stop || true; exit $$rc

clean: venv
	$(VENV)/bin/anycastlab clean

status: venv
	$(VENV)/bin/anycastlab status

# The workflows are checked offline: zizmor's online audits are off (--offline), and check-jsonschema uses
# the GitHub-workflow schema bundled in the package. actionlint only where installed (its PyPI wrapper
# downloads a binary from GitHub when installed, so it cannot be required).
WORKFLOWS := $(wildcard .github/workflows/*.yml)

lint: venv
	$(VENV)/bin/ruff check lab cli tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy -p anycastlab
	$(VENV)/bin/zizmor --offline --no-progress -q .github/workflows
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	@if command -v actionlint >/dev/null 2>&1; then actionlint $(WORKFLOWS); \
	else echo "actionlint: not installed, skipped"; fi

unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

# The integration tests get a Docker daemon and the images first; a daemon this target started is
# stopped at the end, whatever the tests' outcome (whose exit status is kept).
integration: deps
	@was_running=0; if $(DOCKERD) owned; then was_running=1; fi; \
	stop() { if [ $$was_running = 0 ]; then $(DOCKERD) stop || true; fi; }; \
	trap 'stop; exit 130' INT TERM; \
	rc=0; $(MAKE) --no-print-directory docker || rc=$$?; \
	if [ $$rc = 0 ]; then $(VENV)/bin/pytest -q tests/integration $(PYTEST_ARGS) || rc=$$?; fi; \
	stop; exit $$rc

test: deps
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -q -x tests/unit $(PYTEST_ARGS)
	$(MAKE) --no-print-directory integration

bench: deps
	$(PY) -m bench

conformance: deps
	bash conformance/run.sh

drills: deps
	$(VENV)/bin/anycastlab drill run-all

# Hostile input, on loopback only: 100,000 mutated and hostile HTTP/1.1 requests and a 2,000-connection
# slowloris against the proxy (lab/edge/hostile.py), then the topology and drill loaders under hypothesis.
# `make test` runs a bounded part of both (tests/unit/edge/test_hostile.py, tests/unit/test_loader_fuzz.py).
FUZZ_REQUESTS ?= 100000
FUZZ_SLOWLORIS ?= 2000
fuzz: venv
	$(PY) -m anycastlab.edge.hostile --requests $(FUZZ_REQUESTS) --slowloris $(FUZZ_SLOWLORIS)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q tests/unit/test_loader_fuzz.py
