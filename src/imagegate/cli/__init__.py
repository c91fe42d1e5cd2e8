"""The ``imagegate`` command: one module per command group, no business logic of its own."""

from __future__ import annotations

import typer

from imagegate.cli import db, keys, providers, serve, usage

app = typer.Typer(
    name="imagegate",
    help="imagegate: one API key and one base URL for every image model.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(providers.app, name="providers")
app.command("usage")(usage.usage)


def main() -> None:
    app()
