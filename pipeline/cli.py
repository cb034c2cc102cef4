"""The `pipeline` command: parse arguments, call one stage function, turn results into output.

Expected failures (PipelineError) become one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .config import Settings, is_project, load_feeds, load_settings, not_a_project, now_utc
from .errors import LockHeld, PipelineError
from .models import STATUSES, Problem

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn PipelineError into click's one-line 'Error: ...' and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            raise click.ClickException(exc.message) from exc

    return wrapper  # type: ignore[return-value]


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class Context:
    """What every command needs, opened on first use and closed when the command ends."""

    def __init__(self, root: Path | None) -> None:
        self._root = root
        self.root_given = root is not None
        self._settings: Settings | None = None
        self._store: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._root)
        return self._settings

    def require_project(self) -> None:
        """No store or lock file is ever made in a folder that is not a project (a wrong --root)."""
        settings = self.settings
        if self.root_given and not settings.store_path.exists() and not is_project(settings.root):
            raise not_a_project(settings.root)

    @property
    def store(self) -> Any:
        if self._store is None:
            from .store import open_store

            self.require_project()
            self._store = open_store(self.settings.store_location)
        return self._store

    def lock(self, wait_seconds: float = 10.0) -> Any:
        from .lock import run_lock

        self.require_project()
        return run_lock(self.settings, wait_seconds)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipeline")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Project folder (default: like git, the nearest folder at or above the current one holding "
                   "sources/feeds.toml or a pyproject.toml with [tool.pipeline]).")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Turn news feeds and guides into review-ready Markdown drafts.

    Example:

    \b
        pipeline build            # fetch feeds, then write output/*.md
    """
    obj = Context(root)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def _fetch(obj: Context, quiet: bool = False) -> Any:
    from .update import update_feeds

    settings = obj.settings
    feeds = load_feeds(settings.sources_path)
    show_progress = not quiet and sys.stderr.isatty() and len(feeds) > 1
    progress: Any = None
    if show_progress:
        progress = click.progressbar(length=len(feeds), label="fetching feeds", file=sys.stderr)
        progress.__enter__()
    try:
        report = update_feeds(settings, obj.store, feeds, now_utc(),
                              on_result=(lambda _r: progress.update(1)) if progress else None)
    finally:
        if progress:
            progress.__exit__(None, None, None)
    return report


def _none_fetched(report: Any) -> bool:
    return bool(report is not None and report.feeds and not report.succeeded and report.failed)


def _approved_again(path: Path) -> bool:
    """A revoked approval stays open until the draft is approved again (or is gone)."""
    from .drafts import read_draft
    from .publish import is_published

    try:
        draft = read_draft(path)
    except PipelineError:
        return False
    return draft is None or is_published(draft.front_matter.get("status", "draft"))


def _speak(obj: Context, run: Any, *, everything: bool) -> Any:
    """Print what needs a person and keep the ledger: a quiet run (cron) says only what is new or changed.

    A person running build or fetch sees every condition the run found; the ledger then knows they were
    said, so cron does not say them again.
    """
    from .conditions import adopt_ledger, reconcile

    root = obj.settings.root
    ledger, renamed, old_keys = adopt_ledger(obj.store.conditions(), root)
    if renamed:
        obj.store.save_conditions(renamed, old_keys)
    run = run.within(root)  # one key per draft for every checkout sharing the store
    result = reconcile(ledger, run, now_utc().isoformat(timespec="seconds"),
                       sticky_over=lambda condition: _approved_again(root / condition.subject))
    obj.store.save_conditions(result.opened, result.closed)
    news = {condition.key for condition in result.news}
    for key, line in run.lines.items():
        if everything or key in news:
            click.echo(line, err=True)
    return result


# Every command that writes waits for another run's lock: cron's refresh and an editor's build meet.
_LOCK_WAIT = click.option("--wait", "lock_wait", type=click.FloatRange(min=0), default=10.0, show_default=True,
                          envvar="PIPELINE_LOCK_WAIT", help="Seconds to wait for another run's lock before giving up.")


@cli.command()
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors.")
@_LOCK_WAIT
@click.pass_obj
@handle_errors
def fetch(obj: Context, quiet: bool, lock_wait: float) -> None:
    """Fetch every feed in sources/feeds.toml and store new items.

    Uses conditional GET, so unchanged feeds cost one small request. Exits 0 when at least one
    feed worked, 1 when none did.

    Example:

    \b
        pipeline fetch && pipeline items --json | head
    """
    load_feeds(obj.settings.sources_path)  # a bad feeds.toml stops here, before anything is written
    with obj.lock(lock_wait):
        report = _fetch(obj, quiet)
        from .conditions import Findings, feed_findings  # after the requests: nothing before them waits for it

        run = Findings()
        feed_findings(run, report.feeds)
        _speak(obj, run, everything=True)
    if not quiet:
        click.echo(
            f"fetched {len(report.feeds)} feeds: {len(report.succeeded)} ok "
            f"({sum(1 for f in report.feeds if f.status == 'not-modified')} not modified), "
            f"{len(report.failed)} failed, {report.new_items} new items"
        )
    if _none_fetched(report):
        raise click.ClickException("no feed could be fetched; check the network and sources/feeds.toml")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--feed", "feed_url", default=None, help="Only items of this feed URL.")
@click.option("--limit", type=int, default=None, help="At most this many items, newest first.")
@click.pass_obj
@handle_errors
def items(obj: Context, as_json: bool, feed_url: str | None, limit: int | None) -> None:
    """List stored news items, newest first.

    Example:

    \b
        pipeline items --json --limit 5
    """
    rows = obj.store.items(feeds=[feed_url] if feed_url else None)
    if limit is not None:
        rows = rows[:limit]
    if as_json:
        click.echo(json.dumps([item.as_json() for item in rows], ensure_ascii=False, indent=2))
        return
    for item in rows:
        date = item.date.isoformat() if item.date else "----------"
        click.echo(f"{date}  {item.source[:24]:<24}  {item.headline}")


def _run_build(obj: Context, *, offline: bool, force: bool, only: tuple[str, ...], regions_only: bool,
               quiet: bool, lock_wait: float = 10.0, check_links: bool = False) -> Any:
    """Fetch, (refresh only) check listed links, build, then say what needs a person: everything found
    (a person), or what is new (quiet)."""
    from . import manifest
    from .conditions import Findings, ai_kinds, draft_findings, draft_kind, feed_findings, note_subject

    settings = obj.settings
    feeds = load_feeds(settings.sources_path)
    run = Findings()
    with obj.lock(lock_wait):
        fetch_report = None
        if not offline:
            fetch_report = _fetch(obj)  # a progress bar appears only when stderr is a terminal
            feed_findings(run, fetch_report.feeds)
            run.look("sources/feeds.toml")
            if _none_fetched(fetch_report):
                run.add("sources/feeds.toml", "none-fetched", "no feed could be fetched; building from the items "
                                                              "already stored")
        drafter: Any = None
        if settings.model:
            from .assist import context_drafter

            def model_note(note: str) -> None:
                run.add(note_subject(note), draft_kind(note), note)

            model = context_drafter(settings, obj.store, model_note)

            def drafter(guide: Any, *args: Any, **kwargs: Any) -> Any:
                run.look(str(guide.path), ai_kinds)  # its model notes are looked for only when it is drafted
                return model(guide, *args, **kwargs)

        links = None
        if check_links and not offline and settings.check_links:
            from .linkcheck import link_health

            links = link_health(settings, obj.store, now_utc(), warn)
        now = now_utc()
        # Nothing changed since the last clean run: the report is known without loading the builder.
        shortcut = manifest.check(settings, obj.store, feeds, now, regions_only=regions_only,
                                  eligible=not (force or only or drafter), links=links)
        report = shortcut.report
        if report is None:
            from .build import build_drafts

            report = build_drafts(settings, obj.store, feeds, now, force=force, only=only or None,
                                  regions_only=regions_only, context_drafter=drafter, links=links, shortcut=shortcut)
        draft_findings(run, report.drafts)
        if links is not None:
            _dead_links_after_build(settings, links, report.drafts, run)
        if not only:
            _look_at_gone_drafts(obj, run)
        spoken = _speak(obj, run, everything=not quiet)
        if drafter is not None:
            _model_summary(model, quiet)
    return report, fetch_report, spoken


def _dead_links_after_build(settings: Settings, links: Any, drafts: Any, run: Any) -> None:
    """A dead link the build dropped is named once, when it turned dead; one still listed (a reviewer's
    list) is a condition on its draft until a person removes it."""
    from .conditions import dead_link_findings
    from .linkcheck import dead_link_outcomes

    dropped, kept = dead_link_outcomes(settings.output_dir, links)
    for line in dropped:
        warn(line)
    dead_link_findings(run, drafts, kept)


def _look_at_gone_drafts(obj: Context, run: Any) -> None:
    """A draft deleted (or its guide removed) has nothing left for a person to act on: its conditions end."""
    output_dir = obj.settings.output_dir
    for condition in obj.store.conditions():
        path = obj.settings.root / condition.subject  # a project path, or an absolute one kept before
        if path.parent == output_dir and path.suffix == ".md" and not path.exists():
            run.look(condition.subject, lambda kind: True)


def _model_summary(model: Any, quiet: bool) -> None:
    """The model's usage: always for a person; for cron only when the model was actually called."""
    summary = model.summary() if hasattr(model, "summary") else None
    called = getattr(getattr(model, "assistant", None), "calls", 0)
    if summary and (not quiet or called):
        click.echo(summary, err=quiet)


@cli.command()
@click.option("--offline", is_flag=True, help="Do not fetch; build from the items already stored.")
@click.option("--force", is_flag=True, help="Regenerate drafts, replacing hand edits and approved drafts.")
@_LOCK_WAIT
@click.argument("slugs", nargs=-1, metavar="[SLUG|GUIDE_PATH]...")
@click.pass_obj
@handle_errors
def build(obj: Context, offline: bool, force: bool, lock_wait: float, slugs: tuple[str, ...]) -> None:
    """Write review-ready drafts to output/ from templates/guides/ and stored news.

    Fetches feeds first unless --offline (a failed fetch only warns). Reviewer edits are merged,
    never lost; a conflict leaves the draft untouched and exits 1. A guide is named by its slug or
    its path (templates/guides/SLUG.md); none means every guide.

    Example:

    \b
        pipeline build --offline wechat-encryption
        pipeline build templates/guides/mobile-payments.md
    """
    only = tuple(_guide_slug(obj, given) for given in slugs)
    report, _, _ = _run_build(obj, offline=offline, force=force, only=only, regions_only=False, quiet=False,
                              lock_wait=lock_wait)
    counts = ", ".join(f"{report.count(o)} {o}" for o in ("created", "updated", "unchanged", "kept", "conflict", "error")
                       if report.count(o))
    click.echo(f"built {len(report.drafts)} drafts in {obj.settings.output_dir}: {counts or 'nothing to do'}")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} draft(s) could not be built; see the errors above")


def _guide_slug(obj: Context, given: str) -> str:
    """A slug as it is; a guide's path (templates/guides/SLUG.md, as a shell completes it) becomes its slug."""
    if not given.endswith(".md") and "/" not in given and "\\" not in given:
        return given
    from .errors import GuideError

    path = Path(given)
    if not path.is_absolute() and obj.root_given and not path.exists():
        path = obj.settings.root / path  # an explicit --root applies to PATH too, as for `status`
    guides_dir = obj.settings.guides_dir.resolve()
    if path.suffix != ".md" or path.resolve().parent != guides_dir:
        raise GuideError(path, f"not a guide; guides are {guides_dir}/SLUG.md (pass that path or the SLUG)")
    return path.stem


@cli.command()
@click.option("--force", is_flag=True, help="Replace hand-edited Further Reading and context regions too.")
@click.option("--offline", is_flag=True, help="Do not fetch feeds or check links; refresh from what is stored.")
@_LOCK_WAIT
@click.pass_obj
@handle_errors
def refresh(obj: Context, force: bool, offline: bool, lock_wait: float) -> None:
    """Fetch feeds and update only the Further Reading parts of existing drafts (for cron).

    Checks the links drafts list (each at most once a day; `check_links = false` in [tool.pipeline]
    turns it off): a dead story is dropped and its slot refilled, a moved one takes its new URL.
    Quiet unless something new needs a person: each condition is said on the run that finds it and
    again only when it changes (`pipeline status` lists the open ones). Exit status: 0 done (some
    feeds may have failed); 1 nothing could be fetched or a draft could not be written. When another
    run holds the lock it waits briefly, then exits 0 saying so.

    Example:

    \b
        pipeline refresh
        */30 * * * * cd /srv/guides && .venv/bin/pipeline refresh  # crontab
    """
    try:
        report, fetch_report, spoken = _run_build(obj, offline=offline, force=force, only=(), regions_only=True,
                                                  quiet=True, lock_wait=lock_wait, check_links=True)
    except LockHeld as exc:
        click.echo(f"refresh skipped: {exc.message}", err=True)
        return
    # The exit status always says a person must act; the line only comes with news, as cron mails stderr.
    said = {condition.subject for condition in spoken.news}
    if report.failed:
        from .conditions import project_subject

        if any(project_subject(obj.settings.root, draft.path) in said for draft in report.failed):
            raise click.ClickException(f"{len(report.failed)} draft(s) could not be refreshed; see the errors above")
        sys.exit(1)
    if _none_fetched(fetch_report):
        if "sources/feeds.toml" in said:
            raise click.ClickException("no feed could be fetched; drafts were refreshed from stored items")
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
@handle_errors
def sources(obj: Context, as_json: bool) -> None:
    """Show each feed's health: last success, status, items stored, failures in a row, last error.

    Flags a feed that answers but has added no item for three times its usual interval, and one
    whose items are dated in the future.

    Example:

    \b
        pipeline sources
    """
    from .feedhealth import feed_flags

    feeds = load_feeds(obj.settings.sources_path)
    states = obj.store.feed_states()
    now = now_utc()
    rows: list[dict[str, Any]] = []
    for feed in feeds:
        state = states.get(feed.url)
        rows.append({
            "publisher": feed.publisher or "",
            "url": feed.url,
            "last_success": state.last_success.strftime("%Y-%m-%d %H:%M") if state and state.last_success else None,
            "last_status": state.last_status if state else None,
            "items": state.items_stored if state else 0,
            "failures": state.consecutive_failures if state else 0,
            "retry_after": state.retry_after.strftime("%Y-%m-%d %H:%M") if state and state.retry_after else None,
            "last_error": state.last_error if state else None,
            "flags": feed_flags(obj.store.items(feeds=[feed.url]), state, now),
        })
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    header = f"{'':3}{'PUBLISHER':<24} {'LAST SUCCESS':<16} {'STATUS':<6} {'ITEMS':>5} {'FAILS':>5}  URL / LAST ERROR"
    click.echo(header)
    for row in rows:
        _source_row(row)


def _source_row(row: dict[str, Any]) -> None:
    """One feed of `pipeline sources`: failing in red with its last error, flagged with its flags."""
    failing = row["failures"] > 0
    mark = click.style("!! ", fg="red", bold=True) if failing or row["flags"] else "   "
    line = (f"{mark}{row['publisher'][:24]:<24} {row['last_success'] or 'never':<16} "
            f"{row['last_status'] or '-':<6} {row['items']:>5} {row['failures']:>5}  {row['url']}")
    click.echo(click.style(line, fg="red") if failing else line)
    if failing:
        retry = f" (next try after {row['retry_after']} UTC)" if row["retry_after"] else ""
        click.echo(click.style(f"{'':63}last error: {row['last_error']}{retry}", fg="red"))
    for flag in row["flags"]:
        click.echo(click.style(f"{'':63}{flag}", fg="yellow"))


@cli.group()
def store() -> None:
    """Work with the store: items, feed state and caches (pipeline.sqlite3, or a PostgreSQL URL).

    Example:

    \b
        pipeline store copy pipeline.sqlite3 postgresql://team@db.example/guides
    """


@store.command("copy")
@click.argument("source")
@click.argument("target")
@click.option("--force", is_flag=True, help="Replace whatever TARGET already holds.")
@handle_errors
def store_copy(source: str, target: str, force: bool) -> None:
    """Copy every table from SOURCE to TARGET (a SQLite file or a postgresql:// URL each).

    Use it once when a team moves to a shared PostgreSQL store, or to take a copy back. A TARGET
    that already holds rows is refused unless --force. Then set the store in pyproject.toml.

    Example:

    \b
        pipeline store copy pipeline.sqlite3 postgresql://team@db.example/guides
        pipeline store copy postgresql://team@db.example/guides backup.sqlite3
    """
    from .store_copy import copy_store
    from .store_postgres import without_password

    copied = copy_store(source, target, force=force)
    rows = ", ".join(f"{count} {table}" for table, count in copied.items())
    click.echo(f"copied {sum(copied.values())} rows to {without_password(target)}: {rows}")


@cli.command()
@click.argument("slug")
@click.pass_obj
@handle_errors
def explain(obj: Context, slug: str) -> None:
    """Show the stories a guide considered for Further Reading, with score and reason.

    Every stored story in the guide's age window holding one of its keywords or phrases is listed,
    the chosen ones first, so an editor can tune keywords, phrases, exclude and require. Links the
    draft's reviewers removed from its list (or pinned there), and links found dead, are passed
    over as a build passes them over.

    Example:

    \b
        pipeline explain wechat-encryption
    """
    import datetime as dt

    from .build import reviewer_passed_over
    from .guides import load_guide
    from .select import ENOUGH_EVIDENCE, Candidates

    settings = obj.settings
    guide_path = settings.guides_dir / f"{slug}.md"
    if not guide_path.is_file():
        raise click.ClickException(f"{guide_path}: no such guide")
    guide = load_guide(guide_path)
    feeds = load_feeds(settings.sources_path)
    now = now_utc()
    window = Candidates(obj.store.items(since=now.date() - dt.timedelta(days=guide.max_age_days)), now,
                        guide.max_age_days)
    passed_over = _excluded_links(obj) | reviewer_passed_over(settings.output_dir / f"{slug}.md")
    considered = window.explain(guide, {feed.url: feed.tags for feed in feeds}, passed_over)
    words = "; ".join(f"{name} [{', '.join(values)}]" for name, values in (
        ("keywords", guide.keywords), ("phrases", guide.phrases), ("exclude", guide.exclude),
        ("require", guide.require), ("tags", guide.tags)) if values)
    click.echo(f"{slug}: {words or 'no keywords or phrases: nothing can be chosen'}")
    click.echo(f"up to {guide.further_reading_count} stories from the last {guide.max_age_days} days; "
               f"a story needs a score of {ENOUGH_EVIDENCE} from keywords and phrases")
    if not considered:
        click.echo("no stored story holds any of the guide's keywords or phrases")
    for entry in considered:
        item = entry.item
        mark = "+" if entry.chosen else "-"
        date = item.date.isoformat() if item.date else "----------"
        click.echo(f"{mark} {entry.score:>3}  {date}  {item.source[:24]:<24}  {item.headline}")
        click.echo(f"{'':7}{entry.reason}")


def _excluded_links(obj: Context) -> frozenset[str]:
    """Links selection skips: the ones link health found dead."""
    return frozenset(url for url, check in obj.store.link_checks().items() if check.verdict == "dead")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_obj
@handle_errors
def links(obj: Context, as_json: bool) -> None:
    """List every link the drafts' Further Reading lists, with its verdict and last check.

    Verdicts come from `pipeline refresh`: ok, moved, unverified (kept), dead (dropped).

    Example:

    \b
        pipeline links
    """
    from .linkcheck import listed_links

    checks = obj.store.link_checks()
    rows: list[dict[str, Any]] = []
    for url, slugs in sorted(listed_links(obj.settings.output_dir).items()):
        check = checks.get(url)
        rows.append({"url": url, "drafts": list(slugs), "verdict": check.verdict if check else "unchecked",
                     "last_check": check.checked_at.strftime("%Y-%m-%d %H:%M") if check else None,
                     "status": check.status if check else None, "detail": check.detail if check else ""})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'VERDICT':<11} {'LAST CHECK':<16} {'DRAFTS':<24} URL / DETAIL")
    for row in rows:
        click.echo(f"{row['verdict']:<11} {row['last_check'] or 'never':<16} {', '.join(row['drafts'])[:24]:<24} "
                   f"{row['url']}")
        if row["detail"]:
            click.echo(f"{'':53}{row['detail']}")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.argument("status", type=click.Choice(STATUSES), required=False)
@click.option("--json", "as_json", is_flag=True, help="With no STATUS: print JSON instead of text.")
@click.pass_obj
@handle_errors
def status(obj: Context, path: Path | None, status: str | None, as_json: bool) -> None:
    """Set a draft's review status (draft -> in-review -> approved), or list every draft's.

    With no PATH: every draft with its status, what changed since it was approved, and the conditions
    still open (what cron reported once and a person has not dealt with yet). With PATH alone: that draft.

    Example:

    \b
        pipeline status output/wechat-encryption.md approved
        pipeline status
    """
    if path is not None and not path.is_absolute() and obj.root_given:
        path = obj.settings.root / path  # an explicit --root applies to PATH too
    if status is None:
        _list_status(obj, path, as_json)
        return
    from .build import set_status

    assert path is not None  # click fills PATH before STATUS
    with obj.lock():  # never between a refresh's read and its write
        changed = set_status(path, status, site=obj.settings.site)
    click.echo(f"{path}: status {status}" + ("" if changed else " (unchanged)"))


def _list_status(obj: Context, only: Path | None, as_json: bool) -> None:
    from .overview import overview

    settings = obj.settings
    conditions = obj.store.conditions()
    drafts, other = overview(settings.root, settings.output_dir, conditions,
                             only.resolve() if only is not None else None)
    if as_json:
        click.echo(json.dumps({
            "drafts": [draft.as_json(str(_shown_path(draft.path))) for draft in drafts],
            "open": [{"subject": c.subject, "kind": c.kind, "since": c.since, "message": c.message} for c in other],
        }, ensure_ascii=False, indent=2))
        return
    if not drafts and only is None:
        click.echo(f"no drafts in {_shown_path(settings.output_dir)}; run `pipeline build`")
    for draft in drafts:
        approved = f" (approved {draft.approved_at})" if draft.approved_at else ""
        click.echo(f"{_shown_path(draft.path)}: {draft.status}{approved}")
        if draft.problem:
            click.echo(f"    problem: {draft.problem}")
        for change in draft.changes:
            click.echo(f"    changed since approval, {change.at}: {change.region}: {change.summary}")
        for condition in draft.conditions:
            click.echo(f"    open since {condition.since}: {condition.message}")
    if other:
        click.echo("other open conditions:")
        for condition in other:
            click.echo(f"    open since {condition.since}: {condition.message}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--release", is_flag=True, help="Also require front matter `status: approved`.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one `path:line: rule: message` per problem; json: an array for tools.")
@click.pass_obj
@handle_errors
def check(obj: Context, paths: tuple[Path, ...], release: bool, output_format: str) -> None:
    """Check drafts against the release rules (every output/*.md when no PATH is given).

    Prints one `path:line: rule: message` per problem. Exit status: 0 clean, 1 problems found,
    2 a file could not be read (or there was nothing to check).

    Example:

    \b
        pipeline check --release output/wechat-encryption.md
    """
    from .check import check_files, draft_paths, load_reference

    settings = obj.settings
    # `--root` applies to PATH too, as for `pipeline status`.
    given = [settings.root / p if not p.is_absolute() and not p.exists() and (settings.root / p).exists() else p
             for p in paths]
    files = [_shown_path(p) for p in draft_paths(given, settings.output_dir)]
    if not files:
        where = ", ".join(str(p) for p in paths) or str(_shown_path(settings.output_dir))
        click.echo(f"Error: {where}: no drafts (*.md) to check; run `pipeline build` first", err=True)
        sys.exit(2)  # a release gate that checked nothing must not pass
    from .guide_due import warnings_for_drafts

    now = now_utc()
    problems, errors = check_files(files, load_reference(settings.templates_dir), now, release=release)
    problems += [replace(p, path=_shown_path(p.path)) for p in warnings_for_drafts(
        files, settings.root, settings.guides_dir, _stored_items(obj), now.date(), release=release)]
    for error in errors:
        click.echo(f"Error: {error.message}", err=True)
    _print_problems(problems, output_format, f"checked {len(files) - len(errors)} draft(s)"
                                             f"{' for release' if release else ''}")
    if errors:
        sys.exit(2)
    if any(p.severity == "error" for p in problems):
        sys.exit(1)


def _print_problems(problems: list[Problem], output_format: str, checked: str) -> None:
    """Problems on stdout (text or JSON); in text, a summary on stderr after `checked`."""
    if output_format == "json":
        click.echo(json.dumps([{"path": str(p.path), "line": p.line, "rule": p.rule, "severity": p.severity,
                                "message": p.message} for p in problems], ensure_ascii=False, indent=2))
        return
    for problem in problems:
        click.echo(str(problem))
    warnings = sum(p.severity == "warning" for p in problems)
    summary = f"{len(problems) - warnings} problem(s)" if len(problems) > warnings else "no problems"
    summary += f", {warnings} warning(s) (failures with --release)" if warnings else ""
    click.echo(f"{checked}: {summary}", err=True)


def _has_store(obj: Context) -> bool:
    """A store to read from: a server, or the SQLite file (which reading commands never create)."""
    return bool(obj.settings.store) or obj.settings.store_path.exists()


def _stored_items(obj: Context) -> list[Any]:
    """Stored items, for guides' watch words; none when there is no store yet."""
    return obj.store.items() if _has_store(obj) else []


@cli.command()
@click.option("--open", "open_browser", is_flag=True, help="Open the index in a web browser afterwards.")
@click.option("--diff", "diff_slug", metavar="SLUG", default=None,
              help="Print what changed in output/SLUG.md since it was approved, as a unified diff.")
@click.pass_obj
@handle_errors
def review(obj: Context, open_browser: bool, diff_slug: str | None) -> None:
    """Write the reviewers' pages to output/_review/: every draft as readers see it.

    The index lists each draft's status, what needs a person, check problems, notes and last
    change; each draft's page marks guide, feed and model text, shows problems at their lines and
    the words changed since approval. Plain files: no server needed.

    Example:

    \b
        pipeline review --open
        pipeline review --diff wechat-encryption | less
    """
    from .review import approval_diff, write_site

    settings = obj.settings
    if diff_slug is not None:
        click.echo(approval_diff(settings, diff_slug), nl=False)
        return
    ledger = obj.store.conditions() if _has_store(obj) else []
    link_checks = obj.store.link_checks() if _has_store(obj) else {}
    index = write_site(settings, now_utc(), _stored_items(obj), ledger, link_checks)
    click.echo(f"wrote {_shown_path(index)}")
    if open_browser:
        import webbrowser

        if not webbrowser.open(index.resolve().as_uri()):
            warn(f"no web browser could be started; open {index} yourself")


@cli.command()
@click.argument("topic")
@click.option("--slug", default=None, help="File name under templates/guides/ (default: made from TOPIC).")
@click.pass_obj
@handle_errors
def new(obj: Context, topic: str, slug: str | None) -> None:
    """Start a new guide under templates/guides/ for an editor to write.

    With a model configured (PIPELINE_MODEL) it drafts sections, FAQ and checklist, marked as
    AI-drafted; without one it writes the skeleton. Never replaces an existing guide.

    Example:

    \b
        pipeline new "Opening a bank account as a student"
    """
    from .assist import Assistant, new_guide

    settings = obj.settings
    assistant = Assistant(settings.model, obj.store) if settings.model else None
    result = new_guide(settings, topic, warn, slug=slug, assistant=assistant)
    summary = assistant.summary() if assistant is not None else None
    if summary:
        click.echo(summary)
    kind = "AI-drafted guide (rewrite every line)" if result.drafted else "guide skeleton"
    click.echo(f"wrote {kind}: {_shown_path(result.path)}")


def _shown_path(path: Path) -> Path:
    """A path as a person would type it: relative to the current folder when it is inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except ValueError:
        return path


def main() -> None:
    try:
        cli(prog_name="pipeline")
    finally:
        # By now the store is closed, drafts are written and fsynced, and output is flushed. What is
        # left is the interpreter's teardown, whose repeated garbage collections cost 40-60 ms a
        # run; frozen objects are skipped by them and the operating system frees the memory anyway.
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
