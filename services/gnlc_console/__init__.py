"""The operator console: a server-rendered web tier (FastAPI, Jinja2, htmx) over the
scheduler's and the webhook service's operator APIs. It keeps only its own accounts and
sessions (``accounts``, ``sessions``); everything else it reads and changes through the
APIs (``backend``)."""
