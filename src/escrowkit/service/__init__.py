"""The service: agents in other processes and languages spend through HTTP and MCP, each
with its own key (DESIGN.md section 9).

:func:`escrowkit.service.app.create_app` builds the ASGI app over a coordinator;
``escrowkit serve`` runs it on uvicorn, ``escrowkit mcp`` serves MCP on stdio. Nothing
here holds a rule of its own: the coordinator decides, the service carries requests to
it and answers in the wire shapes of :mod:`escrowkit.service.models`.
"""
