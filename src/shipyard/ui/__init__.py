"""The web UI (``shipyard ui``): runs, run details, comparisons, models, monitoring and a live
view of a running server, server-rendered.

It reads the store through :mod:`shipyard.tracking` and :mod:`shipyard.registry` only; every
script and style is a file of this package (no CDN). See ``docs/ui.md``.

Example:
    >>> from shipyard.store import Store
    >>> from shipyard.ui import UiAuth, create_app
    >>> app = create_app(Store.open(root=".shipyard"), auth=UiAuth())  # doctest: +SKIP
"""

from shipyard._apikeys import load_api_key_roles
from shipyard.ui._app import CSP, create_app
from shipyard.ui._auth import SESSION_SECONDS, UiAuth
from shipyard.ui._serving import normalise_url as normalise_server_url

__all__ = [
    "CSP",
    "SESSION_SECONDS",
    "UiAuth",
    "create_app",
    "load_api_key_roles",
    "normalise_server_url",
]
