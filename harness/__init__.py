"""Offline checks, hermetic kit and end-to-end harness for the multi-tenant Flux fleet repo."""
