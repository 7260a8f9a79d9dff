"""The HTTP API: status, decisions (for Grafana), /metrics, and token-guarded control.

See docs/api.md. The daemon builds it with :func:`create_app` and serves it with
:class:`ApiServer` (uvicorn on a background thread, 127.0.0.1 unless a token is set).
"""

from watchdog.api.app import create_app
from watchdog.api.server import ApiServer
from watchdog.api.settings import ApiSettings, check_bind, load_api_token

__all__ = ["ApiServer", "ApiSettings", "check_bind", "create_app", "load_api_token"]
