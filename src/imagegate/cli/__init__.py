"""The ``imagegate`` command: one module per command group, no business logic of its own.

Server commands (``serve``, ``keys``, ``usage``, ``db``, ``providers``) work on the data
directory; client commands (``generate``, ``edit``, ``vary``, ``estimate``, ``models``,
``imagine``, ``press``, ``tasks``) talk HTTP to a running imagegate (``--base-url``, ``--key``);
``sample`` draws a picture to try them on.
"""

from __future__ import annotations

import typer

from imagegate.cli import catalogue, db, images, keys, midjourney, providers, sample, serve, usage

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
app.command("generate")(images.generate)
app.command("edit")(images.edit)
app.command("vary")(images.vary)
app.command("estimate")(images.estimate)
app.command("models")(catalogue.models)
app.command("imagine")(midjourney.imagine)
app.command("press")(midjourney.press)
app.add_typer(midjourney.tasks_app, name="tasks")
app.command("sample")(sample.sample)


def main() -> None:
    app()
