"""The environment of every Airflow component, for any topology (containers or host processes).

Two parts, kept apart on purpose:

- the shared settings in ``deploy/airflow.env`` (executor, Celery, auth manager, pool): the same
  text for docker-compose.yml (``env_file``) and the host-process test;
- the *locations*: where the database, broker, API server, folders and secrets are. Each
  topology sets exactly the keys of :data:`LOCATION_KEYS` itself (docker-compose.yml in its
  ``x-airflow-common`` environment, the e2e test through :class:`Locations`).

``tests/unit/test_compose.py`` checks that the compose file follows this split.
Standard library only: the test imports it by path, without the package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

SHARED_ENV_FILE = Path(__file__).with_name("airflow.env")

# Field of Locations -> environment variable. Every topology sets all of them, and only them,
# on top of the shared file.
LOCATION_VARS: Mapping[str, str] = {
    "airflow_home": "AIRFLOW_HOME",
    "stclusters_home": "STCLUSTERS_HOME",
    "dags_folder": "AIRFLOW__CORE__DAGS_FOLDER",
    "plugins_folder": "AIRFLOW__CORE__PLUGINS_FOLDER",
    "sql_alchemy_conn": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "broker_url": "AIRFLOW__CELERY__BROKER_URL",
    "result_backend": "AIRFLOW__CELERY__RESULT_BACKEND",
    "execution_api_server_url": "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "passwords_file": "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "fernet_key": "AIRFLOW__CORE__FERNET_KEY",
    "jwt_secret": "AIRFLOW__API_AUTH__JWT_SECRET",
    "api_secret_key": "AIRFLOW__API__SECRET_KEY",
}
LOCATION_KEYS = frozenset(LOCATION_VARS.values())
# Secrets: never in a committed file; .env (compose) or generated per run (test).
SECRET_KEYS = frozenset(
    {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"}
)

_OWNED_PREFIXES = ("AIRFLOW", "_AIRFLOW", "STCLUSTERS_")
_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


class EnvFileError(ValueError):
    """A line of an env file cannot be read the same way by docker compose and by Python."""


@dataclass(frozen=True)
class Locations:
    """Where one topology's pieces are; see LOCATION_VARS for the variable each field sets."""

    airflow_home: str
    stclusters_home: str
    dags_folder: str
    plugins_folder: str
    sql_alchemy_conn: str
    broker_url: str
    result_backend: str
    execution_api_server_url: str
    passwords_file: str
    fernet_key: str
    jwt_secret: str
    api_secret_key: str

    def as_env(self) -> dict[str, str]:
        return {LOCATION_VARS[name]: value for name, value in asdict(self).items()}


def read_env_file(path: Path = SHARED_ENV_FILE) -> dict[str, str]:
    """KEY=VALUE lines of a docker env file, restricted to the subset both readers agree on:
    comments, blank lines, unquoted values without `$`; a key may appear once."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise EnvFileError(f"{path}:{lineno}: expected KEY=VALUE, got {raw!r}")
        key, value = match["key"], match["value"]
        where = f"{path}:{lineno}: {key}"
        if key in values:
            raise EnvFileError(f"{where}: set twice (first value {values[key]!r})")
        if "$" in value or value[:1] in {'"', "'"} or " #" in value:
            raise EnvFileError(f"{where}: quotes, '$' and inline comments read differently in compose")
        if key in LOCATION_KEYS:
            raise EnvFileError(f"{where}: a location/secret setting; each topology sets it itself")
        values[key] = value
    return values


def topology_environment(
    locations: Locations, base: Mapping[str, str] | None = None, shared_file: Path = SHARED_ENV_FILE
) -> dict[str, str]:
    """The environment of one Airflow component: ``base`` (e.g. os.environ) without its Airflow
    and stclusters settings (a caller's leftovers, such as the Makefile's AIRFLOW_HOME, must not
    leak in), then the shared settings, then the topology's locations."""
    env = {k: v for k, v in (base or {}).items() if not k.startswith(_OWNED_PREFIXES)}
    env.update(read_env_file(shared_file))
    env.update(locations.as_env())
    return env
