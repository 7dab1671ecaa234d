"""The dashboard (DESIGN.md section 10): one page at ``/`` for the people who watch and
approve, signed in with an approver or admin key. Its files (HTML, CSS, JS) are package
data under ``static/``; it uses nothing but them and the service's own endpoints."""

from __future__ import annotations

from fastapi import FastAPI

from escrowkit.service.backend import Backend
from escrowkit.service.dashboard.sessions import Sessions

__all__ = ["install_dashboard"]


def install_dashboard(app: FastAPI, backend: Backend) -> Sessions:
    """Mount the page and its login on ``app``; its sessions become the key of
    cookie-carrying requests (:mod:`escrowkit.service.auth`)."""
    from escrowkit.service.dashboard.pages import router

    sessions = Sessions(backend)
    app.state.session_key = sessions
    app.include_router(router)
    return sessions
