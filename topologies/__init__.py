"""Topologies shipped with anycastlab (YAML files); `default.yaml` is what `anycastlab up` runs."""
