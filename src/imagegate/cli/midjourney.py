"""``imagegate imagine``, ``press`` and ``tasks watch``: the Midjourney task flow of any
imagegate (``/mj/*``) with a progress bar while a task runs, then its picture and buttons."""

from __future__ import annotations

import base64
import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from imagegate.cli._client import BaseUrl, Client, Key, die, now, print_cost, stderr

DEFAULT_URL = "http://127.0.0.1:8000"
SUBMITTED = (1, 22)
"""Business codes of an accepted submit: submitted, queued."""
NEEDS_MODAL = 21
FINISHED = ("SUCCESS", "FAILURE", "CANCEL")

Out = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Where to save the picture [default: <task id>.png]"),
]
Poll = Annotated[float, typer.Option(min=0.05, help="Seconds between polls")]
Timeout = Annotated[float, typer.Option(min=1, help="Give up waiting after this many seconds")]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", help="Print only the new task's id (for scripts: TASK=$(…))"),
]
Tier = Annotated[str | None, typer.Option(help="Speed tier: fast, turbo or relax (priced apart)")]


def imagine(
    prompt: Annotated[str, typer.Argument(help="The prompt, with flags such as --ar 3:2")],
    tier: Tier = None,
    out: Out = None,
    quiet: Quiet = False,
    poll: Poll = 0.5,
    timeout: Timeout = 600,
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Start a Midjourney imagine, show its progress, save the 2×2 grid, list the buttons."""
    with Client(base_url, key) as client:
        started = now()
        answer = client.json("POST", f"{_prefix(tier)}/mj/submit/imagine", json={"prompt": prompt})
        task_id = _accepted(answer)
        _finish(client, task_id, out, poll, timeout, started, quiet)


def press(
    task_id: Annotated[str, typer.Argument(help="The finished task whose button to press")],
    button: Annotated[
        str, typer.Argument(help="The button's label, e.g. U1, V2, 🔄, 'Zoom Out 2x'")
    ],
    prompt: Annotated[
        str | None, typer.Option(help="For buttons that ask for one (Vary (Region), Custom Zoom)")
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(help="Vary (Region): PNG, white = repaint", exists=True, dir_okay=False),
    ] = None,
    tier: Tier = None,
    out: Out = None,
    quiet: Quiet = False,
    poll: Poll = 0.5,
    timeout: Timeout = 600,
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Press a button of a finished task (U1 upscales the first picture) and follow the new task."""
    with Client(base_url, key) as client:
        task = client.json("GET", f"/mj/task/{task_id}/fetch")
        custom_id = _button(task, button)
        started = now()
        body = {"taskId": task_id, "customId": custom_id}
        answer = client.json("POST", f"{_prefix(tier)}/mj/submit/action", json=body)
        if answer.get("code") == NEEDS_MODAL:
            modal: dict[str, Any] = {"taskId": answer["result"]}
            if prompt is not None:
                modal["prompt"] = prompt
            if mask is not None:
                modal["maskBase64"] = base64.b64encode(mask.read_bytes()).decode()
            answer = client.json("POST", f"{_prefix(tier)}/mj/submit/modal", json=modal)
        new_id = _accepted(answer)
        _finish(client, new_id, out, poll, timeout, started, quiet)


tasks_app = typer.Typer(help="Tasks (Midjourney) on an imagegate server.", no_args_is_help=True)


@tasks_app.command("watch")
def watch(
    task_id: Annotated[str, typer.Argument(help="A Midjourney task id")],
    out: Out = None,
    poll: Poll = 0.5,
    timeout: Timeout = 600,
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Follow a task to its end with a progress bar, then save its picture and list buttons."""
    with Client(base_url, key) as client:
        task = client.json("GET", f"/mj/task/{task_id}/fetch")
        since = (task.get("submitTime") or 0) / 1000 or now()
        _finish(client, task_id, out, poll, timeout, since)


def _prefix(tier: str | None) -> str:
    if tier is None or tier == "fast":
        return ""
    if tier not in ("turbo", "relax"):
        die("--tier must be fast, turbo or relax")
    return f"/mj-{tier}"


def _accepted(answer: dict[str, Any]) -> str:
    if answer.get("code") not in SUBMITTED:
        die(f"refused (code {answer.get('code')}): {answer.get('description')}")
    return str(answer["result"])


def _button(task: dict[str, Any], wanted: str) -> str:
    buttons = task.get("buttons") or []
    found = [
        item
        for item in buttons
        if wanted.lower()
        in {
            str(name).lower()
            for name in (item.get("label"), item.get("emoji"), item.get("customId"))
            if name
        }
    ]
    if not found:
        labels = ", ".join(_label(item) for item in buttons) or "none"
        die(f"task {task.get('id')} has no button {wanted!r}; its buttons: {labels}")
    return str(found[0]["customId"])


def _label(button: dict[str, Any]) -> str:
    return str(button.get("label") or button.get("emoji") or button.get("customId"))


def _finish(
    client: Client,
    task_id: str,
    out: Path | None,
    poll: float,
    timeout: float,
    since: float,
    quiet: bool = False,
) -> None:
    """Follow the task, save its picture, then print the buttons and cost (or, ``quiet``, only
    the task's id)."""
    if not quiet:
        typer.echo(f"task {task_id}")
    task = _follow(client, task_id, poll, timeout)
    if task["status"] != "SUCCESS":
        die(f"task {task_id} ended {task['status']}: {task.get('failReason') or 'no reason given'}")
    if task.get("imageUrl"):
        target = out or Path(f"{task_id}.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.download(task["imageUrl"]).content)
        if not quiet:
            typer.echo(f"saved {target}")
    if quiet:
        typer.echo(task_id)
        return
    if not task.get("imageUrl") and task.get("promptEn"):
        typer.echo(task["promptEn"])
    _print_buttons(task)
    print_cost(client.cost(task_id, since))


def _follow(client: Client, task_id: str, poll: float, timeout: float) -> dict[str, Any]:
    """Poll the task until it ends, a bar showing its progress; the last task object."""
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as progress:
        bar = progress.add_task("submitted", total=100)
        while True:
            task: dict[str, Any] = client.json("GET", f"/mj/task/{task_id}/fetch")
            status = str(task.get("status"))
            progress.update(
                bar, completed=_percent(task.get("progress")), description=status.lower()
            )
            if status in FINISHED:
                return task
            if status == "MODAL":
                die(f"task {task_id} waits for a prompt or mask: press again with --prompt/--mask")
            if time.monotonic() > deadline:
                die(f"task {task_id} is still {status} after {timeout:g} s")
            time.sleep(poll)


def _percent(progress: object) -> float:
    try:
        return float(str(progress or "0").rstrip("%"))
    except ValueError:
        return 0.0


def _print_buttons(task: dict[str, Any]) -> None:
    labels = [_label(item) for item in task.get("buttons") or []]
    if labels:
        typer.echo(f"buttons: {' | '.join(labels)}")
        typer.echo(f"press one: imagegate press {task['id']} {shlex.quote(labels[0])}")
