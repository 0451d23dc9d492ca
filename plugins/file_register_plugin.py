"""The Airflow plugin of the File register view (Airflow 3.1+ plugin interface).

- ``fastapi_apps``: :mod:`redshift_ingest.register_app` mounted on Airflow's API server at
  ``/file-register`` (no second web server; Airflow's auth, see that module).
- ``external_views``: "File register" in the UI's Browse menu, shown inside the Airflow UI (an
  iframe at ``/plugin/file_register`` of the same origin, so the UI's session cookie authenticates it).

This file sits at the top of the plugins folder because the folder's ``.airflowignore`` keeps the
plugin loader out of ``redshift_ingest/`` (a plain library there, see ``devstack/bundle.py``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from redshift_ingest.register_app import URL_PREFIX, LazyApp


class FileRegisterPlugin(AirflowPlugin):
    name = "file_register"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "File register"}]
    external_views = [
        {
            "name": "File register",
            "href": f"{URL_PREFIX}/",
            "url_route": "file_register",
            "destination": "nav",
            "category": "browse",
        }
    ]
