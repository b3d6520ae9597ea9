"""`nhiwatch ranges ...`: whose network an address is in (providers' published IP ranges), and
refreshing that snapshot from the providers' URLs (the only command that uses the network)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nhiwatch.cli.common import Exit, HomeOpt, JsonOpt, QuietOpt, console, emit_json, err, fail, plain, styled

ranges_app = typer.Typer(help="Whose network an IP address is in (cloud and hosting providers' published "
                              "ranges), and refreshing those ranges.",
                         no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def _overrides(values: list[str], as_json: bool) -> dict[str, str]:
    from nhiwatch.knowledge.netranges import SOURCES

    urls: dict[str, str] = {}
    for value in values:
        source, sep, url = value.partition("=")
        source = source.strip()
        if not sep or not url.strip():
            raise fail(f"--url takes SOURCE=URL, not {value!r}", Exit.USAGE, as_json)
        if source not in SOURCES:
            raise fail(f"--url: unknown source {source!r} (known: {', '.join(SOURCES)})", Exit.USAGE, as_json)
        urls[source] = url.strip()
    return urls


@ranges_app.command("update")
def ranges_update(
    url: Annotated[Optional[list[str]], typer.Option(
        "--url", metavar="SOURCE=URL",
        help="Fetch one source from this URL instead of its official one (a mirror; http(s):// or file://). "
             "Repeatable. Sources: aws, github, azure, gcp, oracle, cloudflare-v4, cloudflare-v6, "
             "digitalocean, linode.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each download.")] = 60.0,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download the providers' published IP ranges into your snapshot (uses the network).

    The snapshot is saved in the nhiwatch home and then takes precedence over the one shipped with nhiwatch. A provider that cannot be
    fetched keeps its previous data and is reported. Exit 0 all updated, 3 some failed (kept), 1
    none could be fetched, 2 bad option."""
    from nhiwatch.knowledge import netranges

    urls = _overrides(url or [], as_json)
    try:
        previous = netranges.load_snapshot(home)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the current snapshot: {exc}", Exit.FATAL, as_json) from None

    fetched: dict[str, bytes] = {}
    results: dict[str, dict] = {}
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("sources"), TimeElapsedColumn(), console=err,
                        disable=quiet or as_json or not err.is_terminal, transient=True)
    with progress:
        task = progress.add_task("fetching", total=len(netranges.SOURCES))
        for source, spec in netranges.SOURCES.items():
            address = urls.get(source, spec.url)
            progress.update(task, description=f"fetching {source}")
            try:
                data = netranges.fetch(source, address, timeout=timeout)
                entries, _published = netranges.parse_source(source, data)
            except Exception as exc:  # noqa: BLE001  (any failure of one source is reported, not fatal)
                kept = previous.sources.get(source, {})
                results[source] = {"status": "failed", "url": address, "error": f"{type(exc).__name__}: {exc}",
                                   "kept_prefixes": kept.get("prefixes", 0), "kept_retrieved": kept.get("retrieved")}
            else:
                fetched[source] = data
                results[source] = {"status": "updated", "url": address, "prefixes": len(entries)}
            progress.advance(task)

    failed = sorted(s for s, r in results.items() if r["status"] == "failed")
    if not fetched:
        report = {"saved": None, "sources": results, "failed": failed}
        if as_json:
            emit_json({**report, "error": "no source could be fetched", "exit_code": int(Exit.FATAL)})
        else:
            _print_update(results)
            err.print(styled(("error:", "bold red"), " no source could be fetched; the snapshot is unchanged"))
        raise typer.Exit(int(Exit.FATAL))

    blob = netranges.build_snapshot(fetched, previous=previous.blob,
                                    urls={s: u for s, u in urls.items() if s in fetched})
    path = netranges.save_user_snapshot(blob, home)
    info = netranges.load_snapshot(home).info()
    code = Exit.PARTIAL if failed else Exit.OK
    if as_json:
        emit_json({"saved": str(path), "date": info["date"], "sources": results, "failed": failed,
                   "providers": info["providers"], "exit_code": int(code)})
    elif not quiet:
        _print_update(results)
        console.print(styled(f"saved {plain(path)}: {sum(info['providers'].values()):,} prefixes",
                             (f"; {len(failed)} failed, previous data kept: {', '.join(failed)}" if failed else "",
                              "yellow")))
    if code:
        raise typer.Exit(int(code))


def _print_update(results: dict[str, dict]) -> None:
    table = Table("source", "status", "prefixes", "from / problem", title="IP ranges")
    for source, r in results.items():
        if r["status"] == "updated":  # a URL and a server's error message are text
            table.add_row(source, styled(("updated", "green")), f"{r['prefixes']:,}", plain(r["url"]))
        else:
            table.add_row(source, styled(("failed", "red")), f"{r['kept_prefixes']:,} kept",
                          plain(f"{r['url']}: {r['error']}"))
    console.print(table)


@ranges_app.command("show")
def ranges_show(
    ip: Annotated[str, typer.Argument(help="An IPv4 or IPv6 address.", show_default=False)],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Whose published range holds this address.

    The most specific prefix wins (a GitHub Actions runner inside Azure reports github-actions).
    Exit 0 (also when no provider's range holds it), 2 not an IP address."""
    import ipaddress

    from nhiwatch.knowledge import netranges

    try:
        ipaddress.ip_address(ip.strip())
    except ValueError:
        raise fail(f"not an IP address: {ip!r}", Exit.USAGE, as_json) from None
    snapshot = netranges.load_snapshot(home)
    owner = snapshot.find(ip)
    if as_json:
        emit_json({"ip": ip, "owner": owner._asdict() if owner else None, "pool": owner.pool if owner else None,
                   "snapshot": {"path": snapshot.path, "origin": snapshot.origin, "date": snapshot.date}})
    elif owner:
        console.print(styled(f"{plain(ip)}: ", (plain(owner.pool), "bold"),
                             f" (provider {plain(owner.provider)}"
                             f"{', service ' + plain(owner.service) if owner.service else ''}"
                             f"{', region ' + plain(owner.region) if owner.region else ''}; snapshot {snapshot.date})"))
    else:
        console.print(f"{plain(ip)}: in no published provider range (snapshot {snapshot.date}, {snapshot.origin})")


@ranges_app.command("info")
def ranges_info(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Which IP-range snapshot is in use, its date and sources.

    Yours from `ranges update` when there is one, else the one shipped with nhiwatch; with the
    prefixes, URL and dates of each provider's file."""
    from nhiwatch.knowledge import netranges

    info = netranges.load_snapshot(home).info()
    if as_json:
        emit_json(info)
        return
    console.print(f"snapshot: {plain(info['path'])} ({info['origin']}), date {info['date']}; "
                  f"{info['prefixes']['ipv4']:,} IPv4 and {info['prefixes']['ipv6']:,} IPv6 prefixes")
    if info.get("warning"):
        err.print(styled(("warning:", "yellow"), " ", plain(info["warning"])))
    table = Table("source", "provider", "prefixes", "retrieved", "published", "url")
    for source, meta in sorted(info["sources"].items()):
        table.add_row(source, meta["provider"], f"{meta['prefixes']:,}", meta.get("retrieved") or "",
                      meta.get("published") or "", plain(meta["url"] + (f" (via {meta['via']})"
                                                                       if meta.get("via") else "")))
    console.print(table)
