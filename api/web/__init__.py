"""The people-facing pages: the chat playground (`/`) and the usage dashboard (`/dashboard`).

Plain HTML, CSS and JavaScript under `static/`, served by the app itself (no build step, no
CDN); the chart library is vendored under `static/vendor/` (see its README)."""
