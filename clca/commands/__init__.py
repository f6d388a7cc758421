"""CLI command modules; each registers its commands on :data:`clca.cli_app.app` when imported."""
