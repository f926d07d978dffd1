"""Access to clusters and Docker: API clients, readiness predicates, port-forwards, a run's network and registry."""
