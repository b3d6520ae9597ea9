"""`nhiwatch serve`: the web dashboard and its JSON API, optionally with a watcher in the same process."""

from __future__ import annotations

import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer

from nhiwatch.cli.common import Exit, HomeOpt, JsonOpt, console, fail, open_store, plain


def _tokens(token: list[str], token_file: Optional[Path], as_json: bool) -> list[str]:
    tokens = [t for t in token if t]
    tokens += [t.strip() for t in os.environ.get("NHIWATCH_TOKENS", "").split(",") if t.strip()]
    if token_file is not None:
        try:
            tokens += [line.strip() for line in token_file.read_text().splitlines()
                       if line.strip() and not line.startswith("#")]
        except OSError as exc:
            raise fail(f"cannot read --token-file {token_file}: {exc.strerror}", Exit.USAGE, as_json) from None
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise fail(f"{len(short)} token(s) shorter than 16 characters: use long random tokens "
                   "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')", Exit.USAGE, as_json)
    return tokens


def serve(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but a loopback address needs a token.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    token: Annotated[list[str], typer.Option("--token", help="Accepted token (repeatable; also NHIWATCH_TOKENS, "
                                             "comma-separated).", show_default=False)] = [],  # noqa: B006
    token_file: Annotated[Optional[Path], typer.Option(help="File of accepted tokens, one per line.",
                                                       show_default=False)] = None,
    watch_config: Annotated[Optional[Path], typer.Option("--watch", help="Also run `nhiwatch watch` with this TOML "
                                                         "configuration, in this process, on the same store.",
                                                         show_default=False)] = None,
    protect: Annotated[Optional[list[str]], typer.Option(
        "--protect", help="ARN pattern or name never to act on (repeatable).")] = None,
    profile: Annotated[Optional[str], typer.Option(help="AWS profile for response actions.")] = None,
    role_name: Annotated[Optional[str], typer.Option(help="Role to assume in an identity's account for response "
                                                          "actions when it is not the caller's own.")] = None,
    external_id: Annotated[Optional[str], typer.Option(help="ExternalId for --role-name.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The web dashboard: inventory, each identity's normal, findings, incidents and response.

    Binds 127.0.0.1 by default: reads need no token there, response actions need the token printed
    at start (or one given with --token). Any other address needs --token for everything. Every page
    has a JSON API behind it, described at /api/openapi.json. With --json, the address and token are
    printed as one JSON line once the server listens. Exit codes: 0 stopped, 2 misconfiguration,
    4 the store is in use by another process (use --watch to watch and serve in one process)."""
    import uvicorn

    from nhiwatch.server.app import ServeSettings, create_app, is_loopback

    tokens = _tokens(token, token_file, as_json)
    if not is_loopback(host) and not tokens:
        raise fail(f"binding {host} exposes the store beyond this machine: give --token (or NHIWATCH_TOKENS, "
                   "--token-file)", Exit.USAGE, as_json)
    generated = None
    if not tokens:
        generated = secrets.token_urlsafe(24)  # this run's token for response actions, printed below
        tokens = [generated]
    watch_settings = None
    if watch_config is not None:
        from nhiwatch.cli.watch import build_config
        from nhiwatch.watch.config import ConfigError

        try:
            watch_settings = build_config(watch_config, [], [], None, "NHIWATCH_INTAKE_SECRET", [], 90, [], None, None)
        except ConfigError as exc:
            raise fail("the watch configuration has problems:\n  " + "\n  ".join(exc.problems), Exit.USAGE,
                       as_json) from None
        if not watch_settings.sources:
            raise fail(f"{watch_config} has no sources to watch", Exit.USAGE, as_json)
    store = open_store(home or (watch_settings.home if watch_settings else None), as_json)
    settings = ServeSettings(home=store.home, host=host, port=port, tokens=tokens, protected=protect or [],
                             aws_profile=profile, role_name=role_name, external_id=external_id)
    app = create_app(store, settings)
    watcher = watcher_thread = None
    failed: list[str] = []
    if watch_settings is not None:
        from nhiwatch.watch.watcher import Watcher, log_line

        watcher = Watcher(store, watch_settings)

        def watch_in_background() -> None:
            try:
                watcher.run()
            except Exception as exc:  # noqa: BLE001 - a watcher that cannot go on stops the whole server
                failed.append(str(exc))
                log_line("error", "watch-stopped", error=str(exc))
                server.should_exit = True

        watcher_thread = threading.Thread(target=watch_in_background, name="watcher", daemon=True)

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off", server_header=False))

    def announce() -> None:
        # After the socket is bound (port 0 picks one): say where, once.
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if not server.started:
            return
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/"
        if as_json:
            sys.stdout.write(orjson.dumps({"url": url, "port": bound, "token": generated, "store": str(store.home),
                                           "watching": watcher is not None}).decode() + "\n")
            sys.stdout.flush()
        else:
            console.print(f"nhiwatch dashboard on {plain(url)}" + (" (and watching)" if watcher else ""))
            if generated:
                console.print(f"open {plain(url)}?token={generated} to be able to act (approve, undo); "
                              "this token lasts until the server stops")
            console.print("Ctrl-C to stop")

    threading.Thread(target=announce, name="announce", daemon=True).start()
    if watcher_thread is not None:
        watcher_thread.start()
    try:
        server.run()
    finally:
        if watcher is not None:
            watcher.stop()
            watcher_thread.join(timeout=60)
        store.close()
    if failed:
        raise fail(f"watch stopped: {failed[0]}", Exit.FATAL, as_json)
