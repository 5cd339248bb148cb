"""``riskmap``: the one entry point (demo data, ingest, build, serve).

Only ``ingest`` and ``demo`` create a store; every other command opens the one named by
``--store`` (or ``RISKMAP_STORE``, default ``./var/riskmap``) and, when it is missing or
holds no data, says which store it looked at and what to run first. Exit codes (docs/cli.md):
0 success, 1 some rows rejected (the rest loaded), 2 refused.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from data.schema import Kind
from service.settings import Settings

if TYPE_CHECKING:
    from service.store import Store


class Engine(StrEnum):
    """Where ``riskmap ingest`` runs its per-file stages and ``riskmap build`` its grading
    and per-unit layers (``RISKMAP_ENGINE``)."""

    LOCAL = "local"
    DASK = "dask"


# exit codes every command uses (click uses 2 for usage errors too)
EXIT_OK = 0        # success; ingest: every row loaded
EXIT_REJECTS = 1   # ingest: some rows rejected, the rest loaded
EXIT_REFUSED = 2   # bad arguments, a file refused, nothing loaded, store missing or empty,
#                    --strict with rejects: nothing was written

EPILOG = ("退出码 exit codes: 0 成功 success, all loaded · 1 部分行被拒收 some rows "
          "rejected, the rest loaded · 2 拒绝 refused: bad arguments, a file refused, "
          "nothing loaded, store missing or empty, --strict with rejects. "
          "详见 see docs/cli.md")


def _measure_wrapped_lines_in_cells() -> None:
    """rich's ``Text.rstrip_end`` measures a line in characters, not terminal cells, so a
    wrapped line holding Chinese that fills its column keeps the space after it and is
    then cut with "…" (option help lost words at some widths). Measure in cells, as the
    rest of rich does (the same for ASCII)."""
    from rich import text as rich_text
    from rich.cells import cell_len

    pattern = getattr(rich_text, "_re_whitespace", None)
    if pattern is None or not hasattr(rich_text.Text, "rstrip_end"):
        return  # a rich without the flaw's code: nothing to mend

    def rstrip_end(self: rich_text.Text, size: int) -> None:
        excess = cell_len(self.plain) - size
        if excess > 0:
            match = pattern.search(self.plain)
            if match is not None:
                self.right_crop(min(len(match.group(0)), excess))

    rich_text.Text.rstrip_end = rstrip_end  # type: ignore[method-assign]


_measure_wrapped_lines_in_cells()
app = typer.Typer(help="riskmap：特种设备双重预防区域风险地图 (special-equipment risk map)",
                  epilog=EPILOG, no_args_is_help=True, add_completion=False)
console = Console(soft_wrap=True)  # long report lines wrap in the terminal, not in logs
errors = Console(soft_wrap=True, stderr=True)

STORE_HELP = ("存储 store: 目录 a directory, or postgresql+psycopg://URL "
              "(默认 default: RISKMAP_STORE, ./var/riskmap)")
FORMATS = ("geojson", "gpkg", "csv")
CRSES = ("EPSG:4326", "EPSG:4490", "GCJ02")
ROLES = ("regulator", "grid_officer", "park_admin", "planner", "admin")


def _choice(choices: tuple[str, ...], zh: str, en: str) -> Callable[[str], str]:
    """A parser of one of ``choices`` (any case), whose error names the value and lists the
    choices: ``未知角色 planer；可选：regulator、grid_officer、… (unknown role)``."""
    by_folded = {c.casefold(): c for c in choices}

    def parse(value: str) -> str:
        found = by_folded.get(str(value).strip().casefold())
        if found is None:
            raise typer.BadParameter(f"{zh} {value}；可选：{'、'.join(choices)} ({en})")
        return found

    return parse


def _settings(store: str | None, **extra: object) -> Settings:
    overrides = {k: v for k, v in {"store": store, **extra}.items() if v is not None}
    return Settings(**overrides)


def _fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Say why on stderr and exit with ``code`` (2: refused)."""
    errors.print(message, highlight=False, markup=False)
    raise typer.Exit(code)


def _where(settings: Settings) -> str:
    """The store as messages name it (absolute directory, URL without password)."""
    from service.store import shown_address

    return shown_address(settings.store_location)


def _run_hint(command: str, settings: Settings) -> str:
    return f"riskmap {command} --store {shlex.quote(_where(settings))}"


@contextmanager
def _opened(settings: Settings, *, create: bool = False, need_data: bool = False
            ) -> Iterator[Store]:
    """The store ``settings`` name. Exit 2 with the store named and what to run when it is
    missing (unless ``create``: only ingest and demo create one), when ``need_data`` and it
    holds no ingested row, or on any store error meanwhile."""
    from service.store import open_store
    from service.store.errors import StoreError

    try:
        store = open_store(settings.store, create=create, h3_resolution=settings.h3_resolution)
    except StoreError as exc:
        _fail(str(exc))
    with store:
        if need_data and not store.has_data():
            _fail(f"存储是空的 the store holds no data: {_where(settings)}\n"
                  f"  先导入台账 first load registry files:\n"
                  f"    {_run_hint('ingest FILES', settings)}")
        try:
            yield store
        except StoreError as exc:
            _fail(f"{exc}\n  存储 store: {_where(settings)}")


# demo --------------------------------------------------------------------------------------

@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="输出目录 output directory")] = Path("var/demo"),
    province: Annotated[str, typer.Option(help="省份 province: 名称 name or adcode, "
                                               "e.g. 河南省, 610000")] = "河南省",
    equipment: Annotated[int, typer.Option(min=100, help="设备数量 pieces of equipment")
                         ] = 50_000,
    seed: Annotated[int, typer.Option(help="随机种子 (same seed, same files)")] = 7,
    store: Annotated[str | None, typer.Option(
        help="演示用户的存储 store for the demo users (默认 default: RISKMAP_STORE, "
             "./var/riskmap); 没有则新建 created if missing")] = None,
    users: Annotated[bool, typer.Option(help="每个角色一个演示用户 one demo user per role, "
                                             "令牌只显示一次 tokens shown once")] = True,
) -> None:
    """生成演示省份的台账文件，并为每个角色创建演示用户 (demo files and one user per role)."""
    from data.demo import generate

    with console.status("生成演示数据 generating demo data…"):
        manifest = generate(province=province, equipment=equipment, seed=seed, out=out)
    console.print(f"已写入 wrote {out}:")
    for name, info in manifest.get("files", {}).items():
        console.print(f"  {name}: {info}")
    if users:
        _demo_users(out, manifest, _settings(store))


def _demo_users(out: Path, manifest: dict, settings: Settings) -> None:
    """One user per role, scoped to the demo: the province, its busiest grid officer and
    its first park. Tokens are printed once (the store keeps only their hashes)."""
    import csv

    from data.demo import FILES
    from service.auth import ROLE_ZH, Role, create_user

    with open(out / FILES["officers"], encoding="utf-8") as fh:
        # the officer with the most cells listed: a demo officer with a worklist to show
        rows = list(csv.DictReader(fh))
    officer = max(rows, key=lambda r: len((r.get("网格单元") or "").split(";")))["网格员编号"]
    parks = json.loads((out / FILES["parks"]).read_text(encoding="utf-8"))["features"]
    park = parks[0]["properties"]["园区编号"]
    province = manifest["province"]["adcode"]
    scopes = {Role.REGULATOR: province, Role.GRID_OFFICER: officer, Role.PARK_ADMIN: park,
              Role.PLANNER: province, Role.ADMIN: None}
    console.print(f"演示用户 demo users in {_where(settings)} (令牌只显示一次 tokens are "
                  "shown once):", highlight=False)
    with _opened(settings, create=True) as st:
        for role, scope in scopes.items():
            _user, token = create_user(st, name=f"演示{ROLE_ZH[role]}", role=role, scope=scope,
                                      pepper=settings.token_pepper.get_secret_value(),
                                      provinces=settings.provinces, actor=f"cli:{_login()}")
            console.print(f"  {role.value:<12} {scope or '全部':<12} {token}", highlight=False,
                          markup=False)


# ingest ------------------------------------------------------------------------------------

@app.command(epilog="退出码 exit: 0 全部载入 all loaded · 1 部分行被拒收 some rows "
             "rejected · 2 文件被拒 a file refused, 无一载入 nothing loaded, "
             "--strict 有拒收 with rejects (nothing written)")
def ingest(
    paths: Annotated[list[Path], typer.Argument(
        help="台账文件 registry files: CSV, XLSX, GeoJSON, GeoPackage (any order)",
        show_default=False)],
    store: Annotated[str | None, typer.Option(help=STORE_HELP + "; 没有则新建 created if "
                                              "missing")] = None,
    crs: Annotated[str | None, typer.Option(
        help="文件默认坐标系 default datum: WGS84 / CGCS2000 / GCJ02 / BD09")] = None,
    kind: Annotated[Kind | None, typer.Option(
        help="强制文件类型 force the kind of every file: " + ", ".join(k.value for k in Kind),
        metavar="KIND")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="有拒收则整批不写入 any reject fails the batch: nothing "
                         "written, exit 2")] = False,
    report: Annotated[Path | None, typer.Option(help="JSON 报告路径 write the report here")
                      ] = None,
    report_xlsx: Annotated[Path | None, typer.Option(
        help="拒收明细工作簿 write the rejected rows to this .xlsx")] = None,
    max_file_mb: Annotated[int, typer.Option(help="单个文件大小上限 MB size limit per file")
                           ] = 2048,
    engine: Annotated[Engine | None, typer.Option(
        help="校验与定位在何处运行 where validation and location run: local 本进程, dask "
             "分区并行 over partitions on Dask (RISKMAP_DASK_SCHEDULER 为已有集群地址 an "
             "existing cluster, 否则启动本地集群 else a LocalCluster); 默认 default "
             "RISKMAP_ENGINE 或 or local", show_default=False)] = None,
    partition_rows: Annotated[int, typer.Option(
        min=1, help="--engine dask: 每个分区的行数 rows of a file per partition")
                              ] = 200_000,  # service.ingest.distributed.PARTITION_ROWS
) -> None:
    """导入台账文件 (validate, locate and load registry files as one batch)."""
    from geo.datum import UnknownDatumError, parse_datum
    from service.ingest.pipeline import IngestOptions
    from service.ingest.pipeline import ingest as run
    from service.ingest.report import ingest_exit_code, summary_lines

    settings = _settings(store, engine=engine.value if engine else None)
    if crs:
        try:
            parse_datum(crs)
        except UnknownDatumError:
            raise typer.BadParameter(f"未知坐标系 unknown datum: {crs}；可选 choose from："
                                     "WGS84、CGCS2000、GCJ02、BD09", param_hint="--crs"
                                     ) from None
    absent = [p for p in paths if not p.is_file()]
    if absent:  # refused before any store is opened: a typo must not load half a delivery
        _fail("\n".join(f"文件被拒 file refused: {p}: "
                        f"{'不是文件 not a file' if p.exists() else '文件不存在 file not found'}"
                        for p in absent) + "\n未导入任何数据 nothing was loaded")
    # one step per file read, one per file validated, then checks and the write
    steps = 2 * len(paths) + 2
    with Progress(SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("打开存储 opening store", total=steps)

        def advance(message: str) -> None:
            progress.update(task, description=message, advance=1)

        options = IngestOptions(
            h3_resolution=settings.h3_resolution, provinces=settings.provinces,
            default_crs=crs, kind=kind, max_bytes=max_file_mb * 2**20, progress=advance,
            actor=f"cli:{_login()}", strict=strict)
        with _opened(settings, create=True) as st:
            if settings.engine == Engine.DASK:
                from service.ingest.distributed import DaskUnavailable, ingest_on_dask

                progress.update(task, description="启动 Dask starting Dask")
                try:
                    result = ingest_on_dask([str(p) for p in paths], st, options,
                                            scheduler=settings.dask_scheduler,
                                            partition_rows=partition_rows)
                except DaskUnavailable as exc:
                    _fail(f"{exc}\n未导入任何数据 nothing was loaded")
            else:
                result = run([str(p) for p in paths], st, options)
    for line in summary_lines(result):
        console.print(line, highlight=False, markup=False)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        console.print(f"报告 report: {report}", highlight=False)
    if report_xlsx:
        from service.ingest.reject_workbook import write_reject_workbook

        report_xlsx.parent.mkdir(parents=True, exist_ok=True)
        rows = write_reject_workbook(result, report_xlsx)
        console.print(f"拒收明细 rejected rows: {rows} → {report_xlsx}", highlight=False)
    code = ingest_exit_code(result)
    if _loaded_and_written(result):
        hint = "riskmap build" if store is None else _run_hint("build", settings)
        console.print(f"图层需重新生成 layers are now stale: {hint}", highlight=False,
                      markup=False)
    elif result.get("written", True):  # (not written: the summary says why)
        errors.print("没有载入任何数据行 no rows were loaded", highlight=False, markup=False)
    raise typer.Exit(code)


def _loaded_and_written(report: dict) -> bool:
    """Whether the batch landed with rows in it (layers built before it are stale)."""
    return bool(report.get("written", True) and report.get("loaded", 0))


def _login() -> str:
    """Who runs the command, for the audit trail (the administrator's unscoped path)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a bare container)
        return str(os.getuid())


# users -------------------------------------------------------------------------------------

users_app = typer.Typer(help="用户与令牌 users and their bearer tokens", no_args_is_help=True,
                        epilog=EPILOG)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    role: Annotated[str, typer.Option(
        help="角色 role: " + ", ".join(ROLES), parser=_choice(ROLES, "未知角色", "unknown role"),
        metavar="ROLE", show_default=False)],
    scope: Annotated[str | None, typer.Option(
        help="范围 scope: 行政区划代码 adcode (410100 或 or 4101), 网格员编号 officer id, "
             "园区编号 park id; admin: 不设 none")] = None,
    name: Annotated[str, typer.Option(help="姓名或说明 name or note")] = "",
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
) -> None:
    """新建用户并打印其令牌，只显示一次 (add a user; its token is the last line)."""
    from service.auth import Role, create_user

    settings = _settings(store)
    with _opened(settings) as st:
        try:
            user, token = create_user(st, name=name, role=Role(role), scope=scope,
                                      pepper=settings.token_pepper.get_secret_value(),
                                      provinces=settings.provinces, actor=f"cli:{_login()}")
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scope") from None
    console.print(f"用户 {user.user_id}（{user.name}，{user.role}，范围 {user.scope or '全部'}）",
                  highlight=False, markup=False)
    print(token)  # alone on the last line, for scripts


@users_app.command("list")
def users_list(store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None) -> None:
    """列出用户（不含令牌）(list users, without tokens)."""
    settings = _settings(store)
    with _opened(settings) as st:
        found = st.users()
    if not found:
        console.print(f"存储 {_where(settings)} 中没有用户 no users yet; 新建 add one:\n"
                      f"  {_run_hint('users add --role admin', settings)}", highlight=False,
                      markup=False)
    for user in found:  # tab-separated, for scripts
        print(f"{user.user_id}\t{user.role}\t{user.scope or '-'}\t{user.name}"
              f"{'（已停用）' if user.disabled else ''}")


@users_app.command("disable")
def users_disable(
    user_id: Annotated[str, typer.Argument(help="用户编号 user id (riskmap users list)",
                                           show_default=False)],
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
) -> None:
    """停用用户，其令牌随即失效 (disable a user; a running service refuses it within 10 s)."""
    from service.store.errors import StoreError

    settings = _settings(store)
    with _opened(settings) as st:
        try:
            st.disable_user(user_id, actor=f"cli:{_login()}")
        except StoreError:
            raise typer.BadParameter(f"没有用户 {user_id}", param_hint="USER_ID") from None
    console.print(f"已停用用户 {user_id}", highlight=False, markup=False)


# build, rules, export ----------------------------------------------------------------------

@app.command()
def build(
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    rules: Annotated[Path | None, typer.Option(
        help="规则文件 rules TOML (默认 default: data/rules.toml)")] = None,
    as_of: Annotated[str | None, typer.Option(
        help="统计日期 as-of date YYYY-MM-DD (默认今天 default today)")] = None,
    engine: Annotated[Engine | None, typer.Option(
        help="风险分级与逐单位图层在何处运行 where grading and the per-unit layers run: "
             "local 本进程, dask 按区县分区并行 over partitions of counties on Dask (需全表的"
             "各阶段在本进程 stages needing the whole table in process; 图层与 local 完全相同 "
             "the same layers); 默认 default RISKMAP_ENGINE 或 or local",
        show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="--engine dask: 已有 Dask 集群的调度器地址 an existing cluster's scheduler, "
             "tcp://host:8786 (默认 default RISKMAP_DASK_SCHEDULER; 无则启动 2 个工作进程"
             "的本地集群 else a LocalCluster of 2 workers)", show_default=False)] = None,
    partitions: Annotated[int | None, typer.Option(
        min=1, help="--engine dask: 分区数上限 partitions at most (默认 default: 每个工作"
                    "进程 2 个且每个不超过约 20 万台设备 2 per worker, ~200,000 pieces each)",
        show_default=False)] = None,
) -> None:
    """计算风险分级与各监管图层 (grade risk and build every map layer)."""
    from datetime import date

    from pydantic import ValidationError

    from layers.rules import RulesError, load_rules
    from service.build import run_build

    try:
        settings = _settings(store, engine=engine.value if engine else None,
                             dask_scheduler=scheduler)
    except ValidationError:
        raise typer.BadParameter(f"调度器地址应为 tcp://host:port 形式 a scheduler address "
                                 f"such as tcp://host:8786: {scheduler}",
                                 param_hint="--scheduler") from None
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(f"日期格式应为 YYYY-MM-DD: {as_of}", param_hint="--as-of"
                                 ) from None
    try:
        rule_set = load_rules(rules or settings.rules)
    except RulesError as exc:
        _fail(str(exc))
    with _opened(settings, need_data=True) as st, \
            console.status("计算图层 building layers…") as status:
        if settings.engine == Engine.DASK:
            from service.build_dask import WorkerLost
            from service.ingest.distributed import DaskUnavailable
            from service.store.errors import DataChanged

            status.update("启动 Dask starting Dask…")
            try:
                result = run_build(st, settings.provinces, rules=rule_set, as_of=day,
                                   progress=lambda stage: status.update(f"计算图层 {stage}…"),
                                   engine=Engine.DASK.value,
                                   scheduler=settings.dask_scheduler, partitions=partitions)
            except (DaskUnavailable, WorkerLost) as exc:
                _fail(f"{exc}\n未生成图层 no build was written")
            except DataChanged as exc:
                _fail(f"数据在生成期间已变更，请重新运行 the data changed while the build read "
                      f"it; run it again: {exc}\n未生成图层 no build was written")
        else:
            result = run_build(st, settings.provinces, rules=rule_set, as_of=day,
                               progress=lambda stage: status.update(f"计算图层 {stage}…"))
    report = result.report
    engine_text = (f"，Dask {report['partitions']} 个分区 partitions"
                   if report.get("engine") == Engine.DASK else "")
    console.print(f"图层已生成 build {result.build_id}（规则 {result.rules_version} "
                  f"{result.rules_hash}，统计日期 {result.as_of}{engine_text}）",
                  highlight=False)
    levels = report.get("levels", {})
    console.print("设备风险等级 equipment levels: " + "，".join(
        f"{_LEVEL_ZH[k]} {levels.get(k, 0):,}" for k in _LEVEL_ZH), highlight=False)
    console.print(f"隐患热点网格 {report['hotspot_cells']}（区域性 "
                  f"{report['regional_hotspot_cells']}），普遍性隐患 {report['widespread']} 项，"
                  f"示范企业缺口 {report['demonstration_gaps']} 个，未定位设备 "
                  f"{report['equipment_unlocated']} 台", highlight=False)
    for line in capacity_lines(report.get("over_capacity", [])):
        console.print(line, highlight=False)
    console.print("耗时 seconds: " + ", ".join(
        f"{k} {v:.1f}" for k, v in report["seconds"].items()), highlight=False)


_LEVEL_ZH = {"red": "重大", "orange": "较大", "yellow": "一般", "blue": "低"}
_CAPACITY_LINES = 20


def capacity_lines(over: list[dict], most: int = _CAPACITY_LINES) -> list[str]:
    """The build summary's capacity lines: one per county over capacity (the first
    ``most``, most over first), or that every county is within it."""
    if not over:
        return ["各区县计划检查均在检查力量之内"]
    lines = []
    for row in over[:most]:
        whose = "规则文件设定，" if row.get("by_rules") else ""
        force = ("无网格员" if row.get("unstaffed") else
                 f"力量 {row['capacity']:,} 次/年（{whose}网格员 {row['officers']:,} 名）")
        lines.append(f"检查力量不足：{row['name']} 计划检查 {round(row['planned']):,} 次/年，"
                     f"{force}")
    if len(over) > most:
        lines.append(f"……另有 {len(over) - most} 个区县计划检查超出检查力量（见 workload 表）")
    return lines


@app.command()
def seed(
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    max_zoom: Annotated[int, typer.Option(
        min=8, max=14, help="预生成到的最大缩放级别 seed zooms 8 to this (默认 default 12)")
    ] = 12,
    workers: Annotated[int, typer.Option(min=1, max=8, help="并行渲染线程 threads")] = 4,
    scopes: Annotated[str, typer.Option(
        help="为哪些层级的监管人员预生成 whose regulators' tiles: province,city,county")
    ] = "province,city",
) -> None:
    """预生成本次图层的默认视图瓦片 (seed the default tiles of the build in force, for the
    administrator and the province's, cities' and, if asked, counties' regulators, so their
    first viewer gets them from the store)."""
    from service.tile_seed import SEED_LAYERS, SEED_SCOPES, SeedSuperseded
    from service.tile_seed import seed as seed_tiles

    levels = tuple(dict.fromkeys(s.strip() for s in scopes.split(",") if s.strip()))
    if not levels or any(level not in SEED_SCOPES for level in levels):
        raise typer.BadParameter(f"须为 {','.join(SEED_SCOPES)} 中的一个或多个，逗号分隔 "
                                 f"one or more of {','.join(SEED_SCOPES)}: {scopes!r}",
                                 param_hint="--scopes")
    settings = _settings(store)
    with _opened(settings, need_data=True) as st, \
            console.status("预生成瓦片 seeding tiles…") as status:
        if st.layer_build() is None:
            _fail(f"图层尚未生成 no layers built yet: {_run_hint('build', settings)}")
        try:
            result = seed_tiles(st, settings.provinces, zooms=tuple(range(8, max_zoom + 1)),
                                layers=SEED_LAYERS, scopes=levels, workers=workers,
                                progress=lambda what: status.update(f"预生成瓦片 {what}…"))
        except SeedSuperseded as exc:
            _fail(f"预生成期间已有新的图层生成，请重新运行 a newer build landed: {exc}")
    console.print(f"已预生成瓦片 seeded {result.tiles:,} 个（{_size(result.bytes)}，空瓦片 "
                  f"{result.empty:,} 个未存），图层 build {result.build_id}，耗时 "
                  f"{result.seconds:.1f} 秒", highlight=False)


@app.command()
def rules(
    check: Annotated[Path | None, typer.Option(help="检查规则文件 validate a rules file")] = None,
    write: Annotated[Path | None, typer.Option(help="写出带注释的默认规则 write the defaults")
                     ] = None,
) -> None:
    """检查或导出规则表 (validate a rules file, or write the commented defaults)."""
    from layers.rules import Rules, RulesError, load_rules, to_toml

    if check is not None:
        try:
            loaded = load_rules(check)
        except RulesError as exc:
            _fail(str(exc))
        console.print(f"规则有效 valid: {loaded.title}（版本 {loaded.version}，"
                      f"指纹 {loaded.fingerprint()}）", highlight=False)
    if write is not None:
        write.write_text(to_toml(Rules()), encoding="utf-8")
        console.print(f"已写入 wrote {write}")
    if check is None and write is None:
        console.print(to_toml(Rules()), highlight=False, markup=False)


def _layer_ids() -> tuple[str, ...]:
    from layers.registry import ALL

    return tuple(ALL)


@app.command()
def export(
    layer: Annotated[str, typer.Argument(
        help="图层 layer: " + ", ".join(_layer_ids()), show_default=False,
        parser=_choice(_layer_ids(), "没有图层", "no such layer"), metavar="LAYER")],
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="输出文件 output file (默认 default: LAYER-ADCODE-CRS.FORMAT "
                            "in the current folder)",
        show_default=False)] = None,
    format: Annotated[str, typer.Option(
        help="格式 format: " + ", ".join(FORMATS), metavar="|".join(FORMATS),
        parser=_choice(FORMATS, "未知格式", "unknown format"))] = "geojson",
    crs: Annotated[str, typer.Option(
        help="坐标系 datum: EPSG:4326 (WGS84), EPSG:4490 (CGCS2000), GCJ02",
        metavar="|".join(CRSES), parser=_choice(CRSES, "未知坐标系", "unknown datum"))
    ] = "EPSG:4326",
    adcode: Annotated[str | None, typer.Option(
        help="只导出一个行政区 one region: 410100 或 or 4101 (同一地区 the same)")] = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
) -> None:
    """导出图层供政务 GIS 使用，并写出 .meta.json 元数据 (export a layer)."""
    from layers.registry import ALL
    from service.errors import BadParameter
    from service.export import export_filename, export_to_file
    from service.params import adcode_conditions

    settings = _settings(store)
    spec = ALL[layer]
    where: tuple = ()
    scope = None
    if adcode:
        from geo.regions import resolve_region

        try:
            where = adcode_conditions(spec, adcode, settings.provinces)
        except BadParameter as exc:
            _fail(f"--adcode {adcode}: {exc}")
        scope = resolve_region(adcode, settings.provinces).adcode
    path = out or Path(export_filename(layer, scope, crs, format))
    with _opened(settings, need_data=True) as st:
        build_in_force = st.layer_build()
        if build_in_force is None:
            _fail(f"图层尚未生成 no layers built yet in {_where(settings)}\n"
                  f"  先生成 first run: {_run_hint('build', settings)}")
        if build_in_force.data_version != st.data_version():
            errors.print(f"注意：数据在图层生成后有变化 the data changed since build "
                         f"{build_in_force.build_id}; 重新生成 rebuild: "
                         f"{_run_hint('build', settings)}", highlight=False, markup=False)
        meta = export_to_file(st, layer, format, crs, path, where)  # type: ignore[arg-type]
    console.print(f"已导出 {meta['rows']} 行到 {path}（{meta['datum']}），元数据 "
                  f"{path}.meta.json", highlight=False, markup=False)


# report ------------------------------------------------------------------------------------

REPORT_FORMATS = ("html", "pdf")


@app.command()
def report(
    adcode: Annotated[str, typer.Option(
        help="行政区 region: 410100 或 or 4101 (省、市、县 province, city or county)")],
    year: Annotated[int | None, typer.Option(
        min=2000, max=2100, help="年度 year (默认现行图层的统计年度 default: the build's)")
    ] = None,
    format: Annotated[str, typer.Option(
        help="格式 format: html, pdf", metavar="html|pdf",
        parser=_choice(REPORT_FORMATS, "未知格式", "unknown format"))] = "html",
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="输出文件 output file (默认 default: 报告_名称_年度.FORMAT)",
        show_default=False)] = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
) -> None:
    """行政区年度报告：整体情况、主要措施、存在的问题、下一步工作安排 (a region's yearly report)."""
    from geo.regions import UnknownRegion, resolve_region
    from layers.rules import RulesError, load_rules
    from service.auth import Principal, Role
    from service.errors import NotFound
    from service.report.data import figures
    from service.report.render import ReportUnavailable, filename, render_html, render_pdf

    settings = _settings(store)
    try:
        region = resolve_region(adcode, settings.provinces)
    except UnknownRegion as exc:
        _fail(f"--adcode: {exc}")
    try:
        rule_set = load_rules(settings.rules)
    except RulesError as exc:
        _fail(str(exc))
    with _opened(settings, need_data=True) as st:
        build_in_force = st.layer_build()
        if build_in_force is None:
            _fail(f"图层尚未生成 no layers built yet in {_where(settings)}\n"
                  f"  先生成 first run: {_run_hint('build', settings)}")
        chosen = year or build_in_force.as_of.year
        admin = Principal(user_id="cli", name="cli", role=Role.ADMIN, scope=None)
        try:
            facts = figures(st, admin, region, chosen, rule_set)
        except NotFound as exc:
            _fail(str(exc))
    html = render_html(facts)
    try:
        body = render_pdf(html) if format == "pdf" else html.encode()
    except ReportUnavailable as exc:
        _fail(str(exc))
    path = out or Path(filename(facts, format))
    path.write_bytes(body)
    console.print(f"已写入 wrote {path}（{region.label}{chosen}年度报告，{len(body):,} 字节）",
                  highlight=False, markup=False)


# info --------------------------------------------------------------------------------------

def info(
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出 print JSON")] = False,
) -> None:
    """存储概况 (the store: size, rows, last batch and build, stale layers)."""
    settings = _settings(store)
    with _opened(settings) as st:
        facts = st.info()
    facts["location"] = _where(settings)
    if as_json:
        print(json.dumps(facts, ensure_ascii=False, indent=1, default=_jsonable))
        return
    for line in _info_lines(facts, settings):
        console.print(line, highlight=False, markup=False)


app.command("info")(info)
app.command("status", help="同 info (alias of info)")(info)


def _jsonable(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _when(value: datetime | None) -> str:
    """A stored time (UTC, naive or not) as ``2026-11-01 08:00:00 UTC``."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        from datetime import UTC

        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _info_lines(facts: dict, settings: Settings) -> list[str]:
    from service.store.tables import TABLES

    kind = {"embedded": "嵌入式 embedded (GeoParquet)", "postgis": "PostGIS"}[facts["kind"]]
    tables = facts["tables"]
    lines = [f"存储 store: {facts['location']}",
             f"  类型 kind: {kind}，H3 分辨率 resolution {facts['h3_resolution']}，"
             f"数据版本 data version {facts['data_version']}",
             f"  大小 size: {_size(facts['size_bytes'])}",
             "  各表行数 rows: " + "，".join(f"{name} {tables.get(name, 0):,}"
                                         for name in TABLES),
             "  其他 other: " + "，".join(f"{name} {n:,}" for name, n in tables.items()
                                        if name not in TABLES),
             f"  用户 users: {facts['users']['total']}（启用 enabled "
             f"{facts['users']['enabled']}）"]
    batch = facts["last_batch"]
    if batch is None:
        lines.append("最近批次 last batch: 无 none — 导入台账 load files: "
                     + _run_hint("ingest FILES", settings))
    else:
        report = batch.get("report") or {}
        lines.append(f"最近批次 last batch: {batch['batch_id']}，{_when(batch['finished_at'])}，"
                     f"读取 read {report.get('read', 0):,}，拒收 rejected "
                     f"{report.get('rejected', 0):,}")
        for name in batch.get("files") or []:
            lines.append(f"  文件 file: {name}")
    build = facts["build"]
    if build is None:
        lines.append("图层 layers: 尚未生成 not built — " + _run_hint("build", settings))
        return lines
    lines.append(f"图层 build: {build['build_id']}，统计日期 as of {build['as_of']}，规则 rules "
                 f"{build['rules_version']} {build['rules_hash']}，生成于 built "
                 f"{_when(build['built_at'])}")
    if facts["stale"]:
        lines.append(f"图层已过期 layers are stale: {facts['stale_reason']} — "
                     + _run_hint("build", settings))
    else:
        lines.append("图层为最新 layers are current")
    return lines


# serve -------------------------------------------------------------------------------------

@app.command()
def serve(
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    host: Annotated[str | None, typer.Option(
        help="监听地址 address to listen on (默认 default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="端口 port (默认 default 8000)")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="进程数 server processes (each keeps its own caches)")] = None,
) -> None:
    """启动地图服务 (serve the API and the map)."""
    import uvicorn

    settings = _settings(store, host=host, port=port, workers=workers)
    with _opened(settings) as st:  # refuse a missing store before anything listens
        if not st.has_data():
            errors.print(f"注意：存储是空的 the store holds no data: {_where(settings)}; "
                         f"导入 load files: {_run_hint('ingest FILES', settings)}",
                         highlight=False, markup=False)
        elif st.layer_build() is None:
            errors.print(f"注意：图层尚未生成 no layers built yet: "
                         f"{_run_hint('build', settings)}", highlight=False, markup=False)
    console.print(f"存储 store: {_where(settings)}", highlight=False, markup=False)
    console.print(f"地图 map: http://{settings.host}:{settings.port}/map")
    # the proxy's X-Forwarded-* headers are ours to judge (RISKMAP_TRUST_PROXY), not
    # uvicorn's, which would believe any from localhost
    options = {"host": settings.host, "port": settings.port, "log_level": "info",
               "access_log": settings.access_log, "proxy_headers": False}
    if settings.workers == 1:
        from service.app import create_app

        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    # Several processes import the app themselves and read their settings from the
    # environment, so the options given here go there first.
    for name, value in (("store", store), ("host", host), ("port", port)):
        if value is not None:
            os.environ[f"RISKMAP_{name.upper()}"] = str(value)
    uvicorn.run("service.app:create_app", factory=True, workers=settings.workers,
                **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    app()
