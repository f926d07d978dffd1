"""Builds the offline kit: every tool and image the e2e needs, from Go modules and Debian packages."""
