"""``riskmap``: the one entry point (demo data, ingest, build, serve)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from data.schema import Kind
from service.settings import Settings

app = typer.Typer(help="riskmap：特种设备双重预防区域风险地图 (special-equipment risk map)",
                  no_args_is_help=True, add_completion=False)
console = Console(soft_wrap=True)  # long report lines wrap in the terminal, not in logs


def _settings(store: str | None, **extra: object) -> Settings:
    overrides = {k: v for k, v in {"store": store, **extra}.items() if v is not None}
    return Settings(**overrides)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="输出目录 output directory")] = Path("var/demo"),
    province: Annotated[str, typer.Option(help="省份名称或代码，如 河南省 / 610000")] = "河南省",
    equipment: Annotated[int, typer.Option(min=100, help="设备数量")] = 50_000,
    seed: Annotated[int, typer.Option(help="随机种子 (same seed, same files)")] = 7,
    store: Annotated[str | None, typer.Option(help="演示用户写入的存储 store for demo users")
                     ] = None,
    users: Annotated[bool, typer.Option(help="为每个角色创建一个演示用户并打印令牌")] = True,
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
    """One user per role, scoped to the demo: the province, its first grid officer and
    park. Tokens are printed once (the store keeps only their hashes)."""
    import csv

    from data.demo import FILES
    from service.auth import ROLE_ZH, Role, create_user
    from service.store import open_store

    with open(out / FILES["officers"], encoding="utf-8") as fh:
        officer = next(csv.DictReader(fh))["网格员编号"]
    parks = json.loads((out / FILES["parks"]).read_text(encoding="utf-8"))["features"]
    park = parks[0]["properties"]["园区编号"]
    province = manifest["province"]["adcode"]
    scopes = {Role.REGULATOR: province, Role.GRID_OFFICER: officer, Role.PARK_ADMIN: park,
              Role.PLANNER: province, Role.ADMIN: None}
    console.print("演示用户 demo users (令牌只显示一次 tokens are shown once):")
    with open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
        for role, scope in scopes.items():
            _user, token = create_user(st, name=f"演示{ROLE_ZH[role]}", role=role, scope=scope,
                                      pepper=settings.token_pepper.get_secret_value(),
                                      provinces=settings.provinces)
            console.print(f"  {role.value:<12} {scope or '全部':<12} {token}", highlight=False,
                          markup=False)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="台账文件 registry files (any order)")],
    store: Annotated[str | None, typer.Option(help="存储 store path or postgresql+psycopg:// URL")
                     ] = None,
    crs: Annotated[str | None, typer.Option(help="文件默认坐标系 default datum: WGS84/CGCS2000/"
                                                 "GCJ02/BD09")] = None,
    kind: Annotated[Kind | None, typer.Option(help="强制文件类型 force the kind of every file")
                    ] = None,
    report: Annotated[Path | None, typer.Option(help="JSON 报告路径 write the report here")
                      ] = None,
    max_file_mb: Annotated[int, typer.Option(help="单个文件大小上限 MB")] = 2048,
) -> None:
    """导入台账文件 (validate, locate and load registry files as one batch)."""
    from geo.datum import UnknownDatumError, parse_datum
    from service.ingest.pipeline import IngestOptions
    from service.ingest.pipeline import ingest as run
    from service.ingest.report import summary_lines
    from service.store import open_store

    settings = _settings(store)
    if crs:
        try:
            parse_datum(crs)
        except UnknownDatumError:
            raise typer.BadParameter(f"未知坐标系 unknown datum: {crs}", param_hint="--crs"
                                     ) from None
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
            actor=f"cli:{_login()}")
        with open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
            result = run([str(p) for p in paths], st, options)
    for line in summary_lines(result):
        console.print(line, highlight=False)
    console.print("图层需重新生成 layers are now stale: riskmap build", highlight=False)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        console.print(f"报告 report: {report}")


def _login() -> str:
    """Who runs the command, for the audit trail (the administrator's unscoped path)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a bare container)
        return str(os.getuid())


users_app = typer.Typer(help="用户与令牌 users and their bearer tokens", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    role: Annotated[str, typer.Option(help="regulator / grid_officer / park_admin / planner / "
                                           "admin")],
    scope: Annotated[str | None, typer.Option(help="行政区划代码、网格员编号或园区编号")] = None,
    name: Annotated[str, typer.Option(help="姓名或说明")] = "",
    store: Annotated[str | None, typer.Option(help="存储 store path or URL")] = None,
) -> None:
    """新建用户并打印其令牌（令牌只显示这一次，最后一行）."""
    from service.auth import Role, create_user
    from service.store import open_store

    try:
        role_value = Role(role)
    except ValueError:
        raise typer.BadParameter(f"未知角色 {role}", param_hint="--role") from None
    settings = _settings(store)
    with open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
        try:
            user, token = create_user(st, name=name, role=role_value, scope=scope,
                                      pepper=settings.token_pepper.get_secret_value(),
                                      provinces=settings.provinces)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scope") from None
    console.print(f"用户 {user.user_id}（{user.name}，{user.role}，范围 {user.scope or '全部'}）",
                  highlight=False)
    print(token)  # alone on the last line, for scripts


@users_app.command("list")
def users_list(store: Annotated[str | None, typer.Option(help="存储 store path or URL")] = None
               ) -> None:
    """列出用户（不含令牌）."""
    from service.store import open_store

    settings = _settings(store)
    with open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
        for user in st.users():
            console.print(f"{user.user_id}\t{user.role}\t{user.scope or '-'}\t{user.name}"
                          f"{'（已停用）' if user.disabled else ''}", highlight=False)


@users_app.command("disable")
def users_disable(
    user_id: Annotated[str, typer.Argument(help="用户编号 user id (riskmap users list)")],
    store: Annotated[str | None, typer.Option(help="存储 store path or URL")] = None,
) -> None:
    """停用用户：其令牌随即失效（运行中的服务至多 10 秒后拒绝）."""
    from service.store import open_store
    from service.store.errors import StoreError

    settings = _settings(store)
    with open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
        try:
            st.disable_user(user_id)
        except StoreError:
            raise typer.BadParameter(f"没有用户 {user_id}", param_hint="USER_ID") from None
    console.print(f"已停用用户 {user_id}", highlight=False)


@app.command()
def build(
    store: Annotated[str | None, typer.Option(help="存储 store path or URL")] = None,
    rules: Annotated[Path | None, typer.Option(help="规则文件 rules TOML (默认 data/rules.toml)")
                     ] = None,
    as_of: Annotated[str | None, typer.Option(help="统计日期 YYYY-MM-DD (默认今天)")] = None,
) -> None:
    """计算风险分级与各监管图层 (grade risk and build every map layer)."""
    from datetime import date

    from layers.rules import RulesError, load_rules
    from service.build import run_build
    from service.store import open_store

    settings = _settings(store)
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(f"日期格式应为 YYYY-MM-DD: {as_of}", param_hint="--as-of"
                                 ) from None
    try:
        rule_set = load_rules(rules or settings.rules)
    except RulesError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    with console.status("计算图层 building layers…") as status, \
            open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
        result = run_build(st, settings.provinces, rules=rule_set, as_of=day,
                           progress=lambda stage: status.update(f"计算图层 {stage}…"))
    report = result.report
    console.print(f"图层已生成 build {result.build_id}（规则 {result.rules_version} "
                  f"{result.rules_hash}，统计日期 {result.as_of}）", highlight=False)
    levels = report.get("levels", {})
    console.print("设备风险等级 equipment levels: " + "，".join(
        f"{_LEVEL_ZH[k]} {levels.get(k, 0):,}" for k in _LEVEL_ZH), highlight=False)
    console.print(f"隐患热点网格 {report['hotspot_cells']}（区域性 "
                  f"{report['regional_hotspot_cells']}），普遍性隐患 {report['widespread']} 项，"
                  f"示范企业缺口 {report['demonstration_gaps']} 个，未定位设备 "
                  f"{report['equipment_unlocated']} 台", highlight=False)
    console.print("耗时 seconds: " + ", ".join(
        f"{k} {v:.1f}" for k, v in report["seconds"].items()), highlight=False)


_LEVEL_ZH = {"red": "重大", "orange": "较大", "yellow": "一般", "blue": "低"}


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
            console.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(2) from None
        console.print(f"规则有效 valid: {loaded.title}（版本 {loaded.version}，"
                      f"指纹 {loaded.fingerprint()}）", highlight=False)
    if write is not None:
        write.write_text(to_toml(Rules()), encoding="utf-8")
        console.print(f"已写入 wrote {write}")
    if check is None and write is None:
        console.print(to_toml(Rules()), highlight=False, markup=False)


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help="图层编号，如 regions / equipment")],
    out: Annotated[Path, typer.Option("-o", "--out", help="输出文件")],
    format: Annotated[str, typer.Option(help="geojson / gpkg / csv")] = "geojson",
    crs: Annotated[str, typer.Option(help="EPSG:4326 / EPSG:4490 / GCJ02")] = "EPSG:4326",
    adcode: Annotated[str | None, typer.Option(help="只导出该行政区划代码前缀")] = None,
    store: Annotated[str | None, typer.Option(help="存储 store path or URL")] = None,
) -> None:
    """导出图层供政务 GIS 使用，并写出 .meta.json 元数据 (export a layer)."""
    from layers.registry import ALL
    from service.export import export_to_file
    from service.store import open_store
    from service.store.query import Condition

    if layer not in ALL:
        raise typer.BadParameter(f"没有图层 {layer}；可选：{', '.join(ALL)}", param_hint="LAYER")
    if format not in ("geojson", "gpkg", "csv"):
        raise typer.BadParameter("格式须为 geojson、gpkg 或 csv", param_hint="--format")
    if crs not in ("EPSG:4326", "EPSG:4490", "GCJ02"):
        raise typer.BadParameter("坐标系须为 EPSG:4326、EPSG:4490 或 GCJ02", param_hint="--crs")
    where = ()
    if adcode:
        spec = ALL[layer]
        column = next((c for c in ("adcode", "county_adcode", "city_adcode", "province_adcode")
                       if c in spec.field_names), None)
        if column is None or not adcode.isdigit():
            raise typer.BadParameter("该图层不能按行政区划筛选，或代码无效", param_hint="--adcode")
        where = (Condition(column, "prefix", (adcode,)),)
    settings = _settings(store)
    with open_store(settings.store, h3_resolution=settings.h3_resolution) as st:
        meta = export_to_file(st, layer, format, crs, out, where)  # type: ignore[arg-type]
    console.print(f"已导出 {meta['rows']} 行到 {out}（{meta['datum']}），元数据 {out}.meta.json",
                  highlight=False)


@app.command()
def serve(
    store: Annotated[str | None, typer.Option(help="存储 store path or URL")] = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="进程数 server processes (each keeps its own caches)")] = None,
) -> None:
    """启动地图服务 (serve the API and the map)."""
    import uvicorn

    settings = _settings(store, host=host, port=port, workers=workers)
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
