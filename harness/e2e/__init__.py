"""The e2e runtime: clusters, the Git server, publishing, Flux, the fleet lifecycle, diagnostics."""
