"""The File register view: a FastAPI app served by Airflow's own API server (a plugin's ``fastapi_apps``,
mounted at ``/file-register``) and shown inside the Airflow UI (the plugin's external view, in the
navigation as "File register"; see ``plugins/file_register_plugin.py``).

Pages (HTML, server-rendered) and the same data as JSON:

- ``GET /file-register/`` files filtered by file type, status, time, key; the backlog per file type;
  the bulk replay form. JSON: ``GET /file-register/api/files``, ``GET /file-register/api/backlog``.
- ``GET /file-register/files/{file_id}`` one file: status, counts, first error, error message,
  history, landing / archive / quarantine / error report locations, link to its DAG run.
  JSON: ``GET /file-register/api/files/{file_id}``.
- ``POST /file-register/files/{file_id}/replay`` (form: ``force``, ``unpause``) replays a FAILED
  file or force-reloads a DONE one; ``POST /file-register/bulk-replay`` (form: ``file_type``,
  ``since``, ``until``) replays every FAILED file of a type registered in that range. Each triggers
  the file type's DAG with ``conf = {"file_id": ..., "force": ...}`` (Airflow's ``trigger_dag``,
  what the REST API's "Trigger Dag Run" does), one run per file. JSON twins under ``/api``.

Auth is Airflow's: the user comes from the UI's session token (cookie ``_token``) or a bearer token
(``airflow.api_fastapi.core_api.security.get_user``), and every file type is checked with the auth
manager's ``is_authorized_dag``: reading a file needs GET on its DAG's runs, replaying needs POST on
its DAG's runs (what "Trigger Dag" needs), unpausing needs PUT on the DAG. The session cookie is
``SameSite=Lax``, so another site cannot post the forms with it; the POST handlers also refuse an
``Origin`` other than this server.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, and the user
# dependency is created inside ``create_app`` (Airflow's API security module is imported there only).
import logging
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from redshift_ingest import register_view
from redshift_ingest.config import FileType, Settings, default_file_types, default_settings
from redshift_ingest.register_view import ActionRefused, FileFilter, RunRequest

log = logging.getLogger(__name__)

URL_PREFIX = "/file-register"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _may(user: Any, method: str, dag_id: str | None) -> bool:
    """Airflow's auth manager: may ``user`` do ``method`` on the runs of ``dag_id``
    (``PUT`` on the DAG itself)?"""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method=method,
        access_entity=None if method == "PUT" else DagAccessEntity.RUN,
        details=DagDetails(id=dag_id),
        user=user,
    )


def _utc_naive(value: str | None, what: str) -> datetime | None:
    """A time from a form or query (``2026-12-02T14:30``, ISO 8601; an offset is converted to UTC)."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as err:
        detail = f"{what}: expected a time like 2026-12-02T14:30, got {value!r}"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail) from err
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds // 60
    if minutes >= 24 * 60:
        return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def _console_url(s3: str | None) -> str | None:
    """The AWS console page of an ``s3://bucket/key`` object."""
    if not s3 or not s3.startswith("s3://"):
        return None
    bucket, _, key = s3[5:].partition("/")
    return f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}?prefix={quote(key)}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class RegisterApp:
    """The app's state: settings, file types, and how it reaches the warehouse."""

    def __init__(self, settings: Settings, file_types: tuple[FileType, ...]) -> None:
        self.settings = settings
        self.file_types = file_types
        self.by_name = {ft.name: ft for ft in file_types}

    def connect(self):
        from redshift_ingest.hooks.warehouse import WarehouseHook

        return WarehouseHook(warehouse_conn_id=self.settings.warehouse_conn_id).get_conn()

    def readable_types(self, user: Any) -> list[FileType]:
        return [ft for ft in self.file_types if _may(user, "GET", ft.dag_id)]

    def may_read_row(self, user: Any, row: dict[str, Any]) -> bool:
        file_type = self.by_name.get(row.get("file_type") or "")
        return _may(user, "GET", file_type.dag_id if file_type else None)

    def trigger(self, request: RunRequest, user: Any, unpause: bool) -> dict[str, Any]:
        """Trigger ``request.dag_id`` with ``request.conf`` as ``user`` (Airflow's ``trigger_dag``).

        :returns: ``{"dag_id", "run_id", "file_id", "force", "paused"}``.
        :raises HTTPException: 403 without POST on the DAG's runs (or PUT to unpause), 404 no such DAG.
        """
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import DagNotFound
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunTriggeredByType

        if not _may(user, "POST", request.dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not trigger {request.dag_id}")
        with create_session() as session:
            dag_model = DagModel.get_current(request.dag_id, session=session)
            if dag_model is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG {request.dag_id} is not deployed")
            paused = bool(dag_model.is_paused)
            if paused and unpause:
                if not _may(user, "PUT", request.dag_id):
                    raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not unpause {request.dag_id}")
                dag_model.is_paused = False
                paused = False
        verb = "force reload" if request.force else "replay"
        run_id = f"file_register__{datetime.now(UTC):%Y%m%dT%H%M%S%f}__{request.file_id[:12]}"
        try:
            trigger_dag(
                request.dag_id,
                triggered_by=DagRunTriggeredByType.UI,
                triggering_user_name=user.get_name(),
                run_id=run_id,
                conf=request.conf,
                note=f"File register: {verb} of {request.s3_key}",
            )
        except DagNotFound as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
        log.info("%s triggered %s %s for %s (%s)", user.get_name(), request.dag_id, run_id, request.s3_key, verb)
        return {
            "dag_id": request.dag_id,
            "run_id": run_id,
            "file_id": request.file_id,
            "force": request.force,
            "paused": paused,
        }


def _mounted_at(request: Request) -> str:
    """Where the app is mounted (``/file-register`` in Airflow's API server): links and redirects
    are built from it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _filter_query(
    file_type: str | None = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    since: str | None = None,
    until: str | None = None,
    key: str | None = None,
) -> dict[str, str | None]:
    """The view's filters as given in the query string (``status``, not ``status_``)."""
    return {"file_type": file_type, "status": status_, "since": since, "until": until, "key": key}


def _check_origin(request: Request) -> None:
    """Refuse a POST whose ``Origin`` is another site (defence in depth beside SameSite=Lax)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")


def create_app(settings: Settings | None = None, file_types: tuple[FileType, ...] | None = None) -> FastAPI:
    """The File register FastAPI app (mounted by the plugin at :data:`URL_PREFIX`)."""
    from airflow.api_fastapi.core_api.security import get_user

    UserDep = Annotated[Any, Depends(get_user)]  # noqa: N806 (a type alias)
    QueryDep = Annotated[dict[str, str | None], Depends(_filter_query)]  # noqa: N806
    state = RegisterApp(settings or default_settings(), file_types if file_types is not None else default_file_types())
    app = FastAPI(title="File register", description=__doc__.split("\n\n")[0], docs_url=None, redoc_url=None)

    def filters(query: dict[str, str | None], limit: int) -> FileFilter:
        try:
            return FileFilter(
                file_type=query["file_type"] or None,
                status=query["status"] or None,
                since=_utc_naive(query["since"], "since"),
                until=_utc_naive(query["until"], "until"),
                key_contains=(query["key"] or "").strip() or None,
                limit=limit,
            )
        except ValueError as err:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from err

    def files_for(user: Any, wanted: FileFilter) -> list[dict[str, Any]]:
        chosen = state.by_name.get(wanted.file_type or "")
        if chosen is not None and not _may(user, "GET", chosen.dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not read {wanted.file_type} runs")
        conn = state.connect()
        try:
            rows = register_view.list_files(conn, state.settings, wanted)
        finally:
            conn.close()
        allowed = {ft.name for ft in state.readable_types(user)}
        see_unmatched = _may(user, "GET", None)
        return [r for r in rows if (r.get("file_type") in allowed) or (r.get("file_type") is None and see_unmatched)]

    def backlog_for(user: Any) -> list[dict[str, Any]]:
        conn = state.connect()
        try:
            rows = register_view.backlog(conn, state.settings, state.readable_types(user), _now())
        finally:
            conn.close()
        return rows

    def detail_for(user: Any, file_id: str) -> dict[str, Any]:
        conn = state.connect()
        try:
            row = register_view.file_detail(conn, state.settings, file_id)
        finally:
            conn.close()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"file_id {file_id} is not in the register")
        if not state.may_read_row(user, row):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "you may not read this file's runs")
        return row

    def replay_one(user: Any, file_id: str, force: bool, unpause: bool) -> dict[str, Any]:
        conn = state.connect()
        try:
            run = register_view.replay_request(conn, state.settings, state.file_types, file_id, force=force)
        except ActionRefused as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        finally:
            conn.close()
        return state.trigger(run, user, unpause)

    def replay_range(
        user: Any, file_type: str, since: datetime | None, until: datetime | None, unpause: bool
    ) -> list[dict]:
        if file_type in state.by_name and not _may(user, "POST", state.by_name[file_type].dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not trigger {state.by_name[file_type].dag_id}")
        conn = state.connect()
        try:
            # A blank form time is None here and bulk_replay_selection compares it (TypeError): for the owner.
            runs = register_view.bulk_replay_selection(conn, state.settings, state.file_types, file_type, since, until)  # type: ignore[arg-type]
        except ActionRefused as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        finally:
            conn.close()
        return [state.trigger(run, user, unpause) for run in runs]

    def page(request: Request, template: str, **values: Any) -> HTMLResponse:
        html = (
            _environment()
            .get_template(template)
            .render(
                prefix=_mounted_at(request), age=_age, console=_console_url, statuses=register_view.STATUSES, **values
            )
        )
        return HTMLResponse(html)

    # --- HTML --------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index(
        request: Request, user: UserDep, query: QueryDep, message: str | None = None, error: str | None = None
    ) -> HTMLResponse:
        wanted = filters(query, register_view.MAX_ROWS)
        return page(
            request,
            "register_index.html",
            files=files_for(user, wanted),
            backlog=backlog_for(user),
            file_types=[ft.name for ft in state.readable_types(user)],
            wanted={name: value or "" for name, value in query.items()},
            message=message,
            error=error,
            limit=register_view.MAX_ROWS,
        )

    @app.get("/files/{file_id}", response_class=HTMLResponse)
    def file_page(
        request: Request, user: UserDep, file_id: str, message: str | None = None, error: str | None = None
    ) -> HTMLResponse:
        row = detail_for(user, file_id)
        known = {"history", "history_lines", "locations", "run_path"}
        return page(
            request,
            "register_file.html",
            file=row,
            columns=[(k, v) for k, v in row.items() if k not in known],
            may_trigger=row.get("file_type") in state.by_name
            and _may(user, "POST", state.by_name[row["file_type"]].dag_id),
            message=message,
            error=error,
        )

    def _back(request: Request, path: str, **query: str) -> RedirectResponse:
        target = f"{_mounted_at(request)}{path}?{urlencode(query)}"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    @app.post("/files/{file_id}/replay")
    def replay_form(
        request: Request,
        user: UserDep,
        file_id: str,
        force: Annotated[bool, Form()] = False,
        unpause: Annotated[bool, Form()] = False,
    ) -> RedirectResponse:
        _check_origin(request)
        try:
            run = replay_one(user, file_id, force, unpause)
        except HTTPException as err:
            return _back(request, f"/files/{file_id}", error=str(err.detail))
        what = "Force reload" if force else "Replay"
        paused = " The DAG is paused: unpause it for the run to start." if run["paused"] else ""
        return _back(
            request, f"/files/{file_id}", message=f"{what} triggered: {run['dag_id']} run {run['run_id']}.{paused}"
        )

    @app.post("/bulk-replay")
    def bulk_replay_form(
        request: Request,
        user: UserDep,
        file_type: Annotated[str, Form()],
        since: Annotated[str, Form()],
        until: Annotated[str, Form()],
        unpause: Annotated[bool, Form()] = False,
    ) -> RedirectResponse:
        _check_origin(request)
        try:
            runs = replay_range(user, file_type, _utc_naive(since, "since"), _utc_naive(until, "until"), unpause)
        except HTTPException as err:
            return _back(request, "/", file_type=file_type, error=str(err.detail))
        return _back(
            request,
            "/",
            file_type=file_type,
            message=f"Bulk replay: {len(runs)} FAILED {file_type} file(s) from {since} to {until}, one run each.",
        )

    # --- JSON --------------------------------------------------------------------------------------
    @app.get("/api/files")
    def api_files(user: UserDep, query: QueryDep, limit: int = 100) -> JSONResponse:
        return JSONResponse(_jsonable(files_for(user, filters(query, limit))))

    @app.get("/api/files/{file_id}")
    def api_file(user: UserDep, file_id: str) -> JSONResponse:
        return JSONResponse(_jsonable(detail_for(user, file_id)))

    @app.get("/api/backlog")
    def api_backlog(user: UserDep) -> JSONResponse:
        return JSONResponse(_jsonable(backlog_for(user)))

    @app.post("/api/files/{file_id}/replay")
    def api_replay(request: Request, user: UserDep, file_id: str, body: dict[str, Any] | None = None) -> JSONResponse:
        _check_origin(request)
        body = body or {}
        run = replay_one(user, file_id, bool(body.get("force")), bool(body.get("unpause")))
        return JSONResponse(run, status_code=status.HTTP_201_CREATED)

    @app.post("/api/bulk-replay")
    def api_bulk_replay(request: Request, user: UserDep, body: dict[str, Any]) -> JSONResponse:
        _check_origin(request)
        since, until = _utc_naive(body.get("since"), "since"), _utc_naive(body.get("until"), "until")
        if not body.get("file_type") or since is None or until is None:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "file_type, since and until are required")
        runs = replay_range(user, body["file_type"], since, until, bool(body.get("unpause")))
        return JSONResponse({"runs": runs}, status_code=status.HTTP_201_CREATED)

    app.state.register = state
    return app


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class LazyApp:
    """An ASGI app that builds :func:`create_app` on its first request.

    Every Airflow process loads plugins (scheduler, DAG processor, triggerer), but only the API
    server serves this app: building it there, on first use, keeps Airflow's API modules and the
    config files out of the other processes' start-up.
    """

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            self._app = create_app()
        return self._app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)
