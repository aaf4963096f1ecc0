"""CLI commands of the service: `longtail users add|list|token|remove` and `longtail
serve`. Registered on the main app by importing this module (longtail.cli); like the
other command modules it imports what a command uses inside the command."""


import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import JsonOpt, ProjectOpt, at_least, console, emit, handled

if TYPE_CHECKING:
    from longtail.engine.users import UserRecord

users_app = typer.Typer(no_args_is_help=True, help="Users of `longtail serve` and their "
                        "bearer tokens.\n\nExample: longtail users add alice --role annotator")
app.add_typer(users_app, name="users")


@contextlib.contextmanager
def _store(project: Path):
    from longtail.store import Store

    store = Store.open(project)
    try:
        yield store
    finally:
        store.close()


@users_app.command("add")
@handled
def users_add(name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ + -).")],
              role: Annotated[str, typer.Option(help="admin or annotator.")] = "annotator",
              project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Add a user and print their token, once (only its hash is kept).

    Example: longtail users add alice --role annotator -p my-project
    """
    from longtail.engine import users

    with _store(project) as store:
        user, token = users.add_user(store, name, role)
    out = {"name": user.name, "role": user.role, "token": token}
    emit(out, as_json, lambda r: console.print(
        f"user {r['name']} ({r['role']}); token, shown this once:\n{r['token']}", highlight=False))


@users_app.command("token")
@handled
def users_token(name: Annotated[str, typer.Argument(help="User name.")],
                project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Give a user a new token (the old one stops working) and print it, once.

    Example: longtail users token alice -p my-project
    """
    from longtail.engine import users

    with _store(project) as store:
        token = users.new_token(store, name)
    emit({"name": name, "token": token}, as_json,
         lambda r: console.print(f"new token for {r['name']}, shown this once:\n{r['token']}",
                                 highlight=False))


@users_app.command("list")
@handled
def users_list(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List users and roles (tokens are never shown again).

    Example: longtail users list -p my-project
    """
    from longtail.engine import users

    with _store(project) as store:
        rows = users.list_users(store)

    def render(rs: "list[UserRecord]") -> None:
        for u in rs:
            console.print(f"{u.name}\t{u.role}\t{u.created_at}", highlight=False)

    emit(rows, as_json, render)


@users_app.command("remove")
@handled
def users_remove(name: Annotated[str, typer.Argument(help="User name.")],
                 project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Remove a user: their token stops working, their leases return to the queue, their
    labels stay.

    Example: longtail users remove alice -p my-project
    """
    from longtail.engine import users

    with _store(project) as store:
        users.remove_user(store, name)
    emit({"removed": name}, as_json, lambda r: console.print(f"removed {r['removed']}"))


@app.command()
@handled
def serve(project: ProjectOpt = Path("."),
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          lease_ttl: Annotated[float, typer.Option(help="Seconds a leased task stays "
                                                   "reserved before it returns to the queue.")] = 600.0,
          overlap: Annotated[int, typer.Option(help="Answers each task needs, from different "
                                               "annotators (1 or more).")] = 1,
          max_body: Annotated[int, typer.Option(help="Largest request body in bytes.")] = 65536,
          max_import: Annotated[int, typer.Option(help="Largest label file POST /admin/import "
                                                  "takes, in bytes.")] = 64 * 1024 * 1024,
          label_studio: Annotated[bool, typer.Option("--label-studio", help="Also answer Label "
                                                     "Studio's ML-backend protocol (/health, "
                                                     "/setup, /predict, /webhook).")] = False,
          label_studio_url: Annotated[str | None, typer.Option(
              envvar="LABEL_STUDIO_URL", help="Label Studio's URL (ML-backend mode).")] = None,
          label_studio_token: Annotated[str | None, typer.Option(
              envvar="LABEL_STUDIO_API_KEY", show_default=False,
              help="Label Studio API token (ML-backend mode).")] = None,
          retrain_every: Annotated[int, typer.Option(help="ML-backend mode: retrain after this "
                                                     "many new labels.")] = 20,
          auto_round: Annotated[int, typer.Option(help="ML-backend mode: when a round closes "
                                                  "and none is open, plan the next one of this "
                                                  "many samples (0: never).")] = 0,
          max_ml_body: Annotated[int, typer.Option(help="ML-backend mode: largest body of "
                                                   "/predict, /webhook and /setup in bytes "
                                                   "(whole batches of Label Studio tasks).")
                                 ] = 64 * 1024 * 1024,
          label_studio_project: Annotated[int | None, typer.Option(
              help="ML-backend mode: the Label Studio project this server serves (default: "
              "the first one that connects; others are refused).")] = None,
          ml_auth: Annotated[str | None, typer.Option(
              envvar="LONGTAIL_ML_AUTH", show_default=False,
              help="ML-backend mode: USER:PASSWORD that Label Studio must send (HTTP basic "
              "auth) to /health, /setup, /predict, /webhook.")] = None,
          webhook: Annotated[list[str] | None, typer.Option(
              "--webhook", help="URL to POST round_completed / batch_exhausted events to "
              "(repeatable).")] = None,
          webhook_secret: Annotated[str | None, typer.Option(
              envvar="LONGTAIL_WEBHOOK_SECRET", show_default=False,
              help="Secret for the events' X-Longtail-Signature (HMAC-SHA256).")] = None,
          log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info") -> None:
    """Serve the project: the annotators' API and labeling page, the admin API and
    dashboard (OpenAPI at /docs).

    Example: longtail serve -p my-project --host 0.0.0.0 --port 8000 --overlap 2
    """
    at_least("--lease-ttl", lease_ttl, 1)
    at_least("--overlap", overlap, 1)
    at_least("--port", port, 1)
    import logging

    import uvicorn

    from longtail.server.app import create_app
    from longtail.server.settings import ServerSettings

    at_least("--retrain-every", retrain_every, 1)
    settings = ServerSettings(lease_ttl=lease_ttl, overlap=overlap, max_body=max_body,
                              max_import=max_import,
                              label_studio=label_studio, label_studio_url=label_studio_url,
                              label_studio_token=label_studio_token, retrain_every=retrain_every,
                              auto_round=auto_round, max_ml_body=max_ml_body,
                              label_studio_project=label_studio_project, ml_auth=ml_auth,
                              webhooks=tuple(webhook or ()), webhook_secret=webhook_secret)
    api = create_app(project, settings)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    console.print(f"longtail serving {project} on http://{host}:{port} (labeling page /label, "
                  f"dashboard /dashboard, API /docs)", highlight=False)
    # uvicorn's own access log prints query strings; ours prints paths only.
    uvicorn.run(api, host=host, port=port, log_level=log_level, access_log=False)


ls_app = typer.Typer(no_args_is_help=True, help="Label Studio interop: export a round's tasks "
                     "(with predictions and longtail's order), import Label Studio's JSON export."
                     "\n\nExample: longtail label-studio export -p my-project --out tasks.json")
app.add_typer(ls_app, name="label-studio")


@ls_app.command("export")
@handled
def ls_export(out: Annotated[Path, typer.Option(help="Tasks file to write (JSON).")],
              round: Annotated[int | None, typer.Option("--round", help="Round id (default: the "
                                                        "most recent open round).")] = None,
              config: Annotated[Path | None, typer.Option("--label-studio-config",
                                                          help="Also write the labeling config "
                                                          "(XML) here.")] = None,
              force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
              media_prefix: Annotated[str | None, typer.Option(
                  "--media-prefix", help="Images: what Label Studio puts before each image's "
                                         "path under the media root to load it, e.g. "
                                         "/data/local-files/?d=photos/ (its local files "
                                         "storage); the service's admin export gives signed "
                                         "links instead.")] = None,
              project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Export a round's tasks in Label Studio's import format: sort by prediction score
    (lowest first) in Label Studio to label in longtail's order. An image pool gets an
    Image config and each task's `image`.

    Example: longtail label-studio export -p my-project --out tasks.json --label-studio-config config.xml
    """
    emit(write_label_studio_tasks(project, out, round, config, force, media_prefix), as_json,
         render_label_studio_export)


def write_label_studio_tasks(project: Path, out: Path, round: int | None,
                             config: Path | None, force: bool, media_prefix: str | None = None
                             ) -> dict:
    """A round's tasks in Label Studio's import format at `out` (and the labeling
    config at `config`); shared by `label-studio export` and `export --format label-studio`."""
    from longtail.engine import labels, labelstudio
    from longtail.engine.settings import Settings
    from longtail.errors import InputError

    for path in (out, config):
        if path is not None and path.exists() and not force:
            raise InputError(f"{path} already exists: choose another path or pass --force")
    with _store(project) as store:
        settings = Settings.load(store)
        # Images: Label Studio loads `media_prefix + path under the media root` (e.g. its
        # local-files route, /data/local-files/?d=..., or a bucket's address).
        prefixed = (lambda _row, rel: media_prefix + rel) if media_prefix else None
        tasks = labelstudio.export_tasks(store, settings, round, media_url=prefixed)
        xml = labelstudio.labeling_config(labels.label_set(store) or [],
                                          image=settings.media_root is not None) \
            if config else None
    out.write_text(labelstudio.tasks_json(tasks), encoding="utf-8")
    if config is not None:
        config.write_text(xml, encoding="utf-8")
    return {"tasks": len(tasks), "out": str(out), "config": str(config) if config else None}


def render_label_studio_export(r: dict) -> None:
    console.print(f"{r['tasks']} tasks written to {r['out']}"
                  + (f", labeling config to {r['config']}" if r["config"] else ""),
                  highlight=False)


@ls_app.command("import")
@handled
def ls_import(file: Annotated[Path, typer.Argument(help="Label Studio JSON export.")],
              project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Record the annotations of a Label Studio JSON export: choices as labels,
    completed_by as annotator, lead_time as seconds, cancelled as skips.

    Example: longtail label-studio import export.json -p my-project
    """
    from longtail.engine import labelstudio

    with _store(project) as store:
        done = labelstudio.import_export(store, file)
    emit(done.to_dict(), as_json, lambda r: console.print(
        f"{r['rows']} annotations: {r['new_labels']} new labels, {r['changed']} changed, "
        f"{r['unchanged']} unchanged, {r['skipped']} skips", highlight=False))


@ls_app.command("sync")
@handled
def ls_sync(project: ProjectOpt = Path("."),
            ls_project: Annotated[int | None, typer.Option(
                "--ls-project", help="The Label Studio project id (default: the one `serve "
                "--label-studio` is bound to).")] = None,
            url: Annotated[str | None, typer.Option(
                envvar="LABEL_STUDIO_URL", help="Label Studio's URL.")] = None,
            token: Annotated[str | None, typer.Option(
                envvar="LABEL_STUDIO_API_KEY", show_default=False,
                help="A Personal Access Token (or a legacy API token).")] = None,
            overlap: Annotated[int, typer.Option(help="Answers each task needs (as the "
                                                 "server's --overlap).")] = 1,
            as_json: JsonOpt = False) -> None:
    """Pull every annotation of the Label Studio project through its API and record
    what the webhooks missed (a failed delivery, a server that was down). Safe to run
    again: what is recorded already is not recorded twice.

    Example: longtail label-studio sync -p my-project --ls-project 3
    """
    from longtail.engine import labelstudio
    from longtail.engine.tasks import TaskPolicy
    from longtail.errors import InputError
    from longtail.interop.label_studio_api import LabelStudioAPI

    at_least("--overlap", overlap, 1)
    with _store(project) as store:
        ls_project = ls_project if ls_project is not None else labelstudio.bound_project(store)
        if ls_project is None:
            raise InputError("no Label Studio project is bound to this longtail project yet: "
                             "pass --ls-project N (the number in the project's URL)")
        api = LabelStudioAPI(url, token)
        try:
            done = labelstudio.sync(store, api, ls_project, TaskPolicy(overlap=overlap))
        finally:
            api.close()
    result = {"project": done.project, "tasks": done.tasks, "annotations": done.annotations,
              "recorded": done.recorded, "repeats": done.repeats,
              "unmatched_tasks": done.unmatched_tasks, "unreadable": done.unreadable,
              "labels": done.labels.to_dict() if done.labels else None}
    emit(result, as_json, lambda r: console.print(
        f"Label Studio project {r['project']}: {r['tasks']} tasks, {r['annotations']} "
        f"annotations; {r['recorded']} recorded now, {r['repeats']} already recorded"
        + (f"; {len(r['unmatched_tasks'])} annotated tasks match no sample "
           f"(ids {', '.join(map(str, r['unmatched_tasks'][:10]))})" if r["unmatched_tasks"] else "")
        + (f"; {len(r['unreadable'])} annotations unreadable: {r['unreadable'][0]}"
           if r["unreadable"] else ""), highlight=False))
