"""The web review desk: a server-rendered FastAPI app over the same catalogue functions as the CLI.

`app.create_app` builds it (with `config.WebConfig`); `stylevault serve` runs it with uvicorn. Every
write goes through a core function that checks the actor's role and records the change in the audit
chain; the web layer adds sign-in (`passwords`, `sessions`, `throttle`), CSRF protection and pages,
and no business rule of its own. This package imports nothing itself, so `users passwd` can set a
password without loading FastAPI.
"""
