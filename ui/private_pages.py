"""Pages behind sign-in (the review desk, a study's results), each mounted as its own Gradio app under a path.

Gradio's ``auth=`` covers a whole app, so each private page is a Blocks of its own, mounted with
``gr.mount_gradio_app(..., auth=...)`` under its path while the public tabs at ``/`` stay open. Gradio
(6.31) then answers the page with its login form, and its config, API info, queue, upload and file
routes with 401, until a session signs in through ``<path>/login``. Sign-in asks ``emo_core.accounts``
(scrypt-hashed passwords) and admits only the page's roles.

A session token outlives a removed account or a changed role, so every event handler of a private
page calls the page's ``Guard`` first; it asks the accounts again. Downloads (``PrivatePage.exports``)
are routes of the mounted app behind the same guard.

Files a private page shows (the desk's images) are not put in gradio's shared file cache: every app
mounted on the server serves any file there to whoever names its path, the public one included. They go
to a cache folder of the page's own under the data folder, which only the page's app (behind sign-in)
may serve.

A page is one entry in ``app.PRIVATE_PAGES``:

    PAGE = PrivatePage("/results", build, roles=("researcher",), title="Study results")
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable, Mapping

import gradio as gr
from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from emo_core import Settings
from emo_core.accounts import Account, Accounts


class Guard:
    """The one check of every private page's events: the session's account still exists and has a role
    the page admits."""

    def __init__(self, settings: Settings, roles: tuple[str, ...]):
        self.accounts = Accounts.for_data_dir(settings.data_dir)
        self.roles = roles

    def account(self, name: str | None) -> Account | None:
        return self.accounts.authorize(name, self.roles)

    def __call__(self, request: gr.Request | None) -> Account:
        """The signed-in account of this request; a ``gr.Error`` (nothing runs) if there is none."""
        account = self.account(getattr(request, "username", None))
        if account is None:
            raise gr.Error("Your session has no access to this page (signed out, account removed, or another "
                           "role). Sign in again.")
        return account

    async def sign_in(self, name: str, password: str) -> bool:
        """Gradio's ``auth`` callable; scrypt runs in a thread so sign-ins do not stall the server."""
        account = await asyncio.to_thread(self.accounts.verify, name, password)
        return account is not None and account.role in self.roles


@dataclass(frozen=True)
class PrivatePage:
    """A page behind sign-in: where it is mounted, how it is built and who may open it."""

    path: str
    build: Callable[[Settings, Guard], gr.Blocks]
    roles: tuple[str, ...]
    title: str
    head: str = ""
    # file name -> (media type, function of the settings returning the file's text), served at <path>/export/<name>
    exports: Mapping[str, tuple[str, Callable[[Settings], str]]] = field(default_factory=dict)


def mount(app, page: PrivatePage, settings: Settings, **mount_options) -> None:
    """Mounts ``page`` on the FastAPI ``app`` (before the public app at ``/``, whose mount catches every path)."""
    guard = Guard(settings, page.roles)
    blocks = page.build(settings, guard)
    files = page_cache(settings, page)
    files.mkdir(parents=True, exist_ok=True)
    for block in blocks.blocks.values():
        block.GRADIO_CACHE = str(files)
    blocks.delete_cache = (min(settings.cache_max_age, 600), settings.cache_max_age)
    app.add_api_route(page.path, lambda: RedirectResponse(page.path + "/"), methods=["GET"], include_in_schema=False)
    # a private page serves its own files only (not, say, the public vote page's study images)
    options = {**mount_options, "allowed_paths": [str(files)]}
    gr.mount_gradio_app(app, blocks, path=page.path, auth=guard.sign_in, head=page.head,
                        auth_message=f"{page.title}: sign in with your account.", **options)
    gradio_app = _mounted_app(app, page.path)
    for name, (media_type, produce) in page.exports.items():
        gradio_app.add_api_route(f"/export/{name}", _export_endpoint(gradio_app, guard, settings, name, media_type, produce),
                                 methods=["GET"], include_in_schema=False)


def page_cache(settings: Settings, page: PrivatePage):
    """The page's own file cache: outside gradio's shared one, so no other mounted app serves its files."""
    return (settings.data_dir / "page_files" / page.path.strip("/")).resolve()


def _mounted_app(app, path: str):
    from starlette.routing import Mount

    for route in reversed(app.routes):
        if isinstance(route, Mount) and route.path == path.rstrip("/"):
            return route.app
    raise RuntimeError(f"no app is mounted at {path}")


def session_user(gradio_app, request) -> str | None:
    """The name a session signed in with on this mounted app (read as gradio 6.31's own routes read it)."""
    token = (request.cookies.get(f"access-token-{gradio_app.cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{gradio_app.cookie_id}"))
    return gradio_app.tokens.get(token) if token else None


def _export_endpoint(gradio_app, guard: Guard, settings: Settings, name: str, media_type: str,
                     produce: Callable[[Settings], str]):
    async def export(request: Request) -> Response:
        if guard.account(session_user(gradio_app, request)) is None:
            raise HTTPException(status_code=401, detail="Not authenticated")
        text = await asyncio.to_thread(produce, settings)
        return Response(text, media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

    return export
