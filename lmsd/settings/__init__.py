"""One settings object per process, built in layers.

Order, later wins: built-in defaults -> the admin's ``config.toml`` in the data dir (which
``lmsd install`` seeds with the values it generated once, such as the campus id) ->
``LMSD_*`` environment variables (``__`` separates nesting: ``LMSD_API__WORKERS=4``).
Secrets never live here: see :mod:`lmsd.credentials`.

Nothing is read at import time; callers build :class:`Settings` with :func:`load_settings`
and pass it (or parts of it) to the components they start.

Module map:
  models     :class:`Settings` and its sections (campus, gateway, api, events, runtime)
  addresses  where PostgreSQL and NATS are: hosts, ports, TLS, the database's nodes
  media      the video platform's section
  loading    defaults -> config.toml -> LMSD_* environment, with one-line errors
  editing    ``lmsd config set`` and writing the admin's file
"""

from lmsd.settings.addresses import LOOPBACK, NatsSettings, PostgresSettings, SslMode
from lmsd.settings.editing import set_config_value, validate_config, write_config_file
from lmsd.settings.loading import (
    CONFIG_FILE,
    ENV_PREFIX,
    config_path,
    env_layer,
    load_settings,
    read_config_file,
)
from lmsd.settings.media import MediaSettings, Pathway
from lmsd.settings.models import (
    ApiSettings,
    CampusSettings,
    EventSettings,
    GatewaySettings,
    RuntimeSettings,
    Settings,
    default_data_dir,
)

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "LOOPBACK",
    "ApiSettings",
    "CampusSettings",
    "EventSettings",
    "GatewaySettings",
    "MediaSettings",
    "NatsSettings",
    "Pathway",
    "PostgresSettings",
    "RuntimeSettings",
    "Settings",
    "SslMode",
    "config_path",
    "default_data_dir",
    "env_layer",
    "load_settings",
    "read_config_file",
    "set_config_value",
    "validate_config",
    "write_config_file",
]
