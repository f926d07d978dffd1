"""Offline, cluster-free checks of the fleet repo and the tenant repo example."""
