"""Entry points, thin: the command line and the pytest plugin."""
