"""Layer exports for planners and regulators: streamed, scoped, with their metadata."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from fastapi.responses import FileResponse, StreamingResponse

from service.auth import ADCODE_ROLES, Caller, Role, require
from service.deps import StoreDep
from service.export import (
    MEDIA,
    ExportFormat,
    csv_chunks,
    export_filename,
    export_scope,
    geojson_chunks,
    metadata,
    write_gpkg,
)
from service.geojson import CRS_URI, OutputCrs
from service.ogc import parse_properties, parse_sortby
from service.params import LAYER_ID, LayerFilters, spec_of
from service.scope import layer_scope
from service.selection import output_spec

router = APIRouter(prefix="/api/export", tags=["exports"])
EXPORTERS = (Role.ADMIN, Role.PLANNER, Role.REGULATOR)


@router.get("/{layer}", summary="导出图层（GeoJSON / GeoPackage / CSV）",
            dependencies=[require(*EXPORTERS)], response_model=None)
def export(caller: Caller, store: StoreDep, layer: LAYER_ID, background: BackgroundTasks,
           filters: Annotated[LayerFilters, Depends()], format: ExportFormat = "geojson",
           crs: Annotated[OutputCrs, Query(description="输出坐标系")] = "EPSG:4326",
           sortby: Annotated[str | None, Query(
               description="排序：以逗号分隔的字段，+ 升序（默认）、- 降序，如 -D,unit_name")
           ] = None,
           properties: Annotated[str | None, Query(
               description="导出的字段：以逗号分隔的字段名（默认全部；要素编号与几何总会导出）")
           ] = None,
           ) -> StreamingResponse | FileResponse:
    full = spec_of(layer)
    where = (*layer_scope(caller, full), *filters.conditions(full))
    order = parse_sortby(sortby, full)
    spec = output_spec(full, parse_properties(properties, full))
    own = caller.scope if caller.role in ADCODE_ROLES else None
    name = export_filename(spec.id, export_scope(own, filters.adcode, filters.park), crs,
                           format)
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "Content-Crs": f"<{CRS_URI[crs]}>",
               "Link": f'</api/export/{spec.id}/metadata?crs={crs}&format={format}>; '
                       'rel="describedby"'}
    if format == "gpkg":  # SQLite needs a file: written page by page, removed after sending
        folder = Path(tempfile.mkdtemp(prefix="riskmap-export-"))
        path = folder / name
        write_gpkg(store, spec, where, crs, path, order)
        background.add_task(lambda: (path.unlink(missing_ok=True), folder.rmdir()))
        return FileResponse(path, media_type=MEDIA["gpkg"], headers=headers)
    chunks = geojson_chunks if format == "geojson" else csv_chunks
    return StreamingResponse(chunks(store, spec, where, crs, order), media_type=MEDIA[format],
                             headers=headers)


@router.get("/{layer}/metadata", summary="导出元数据", dependencies=[require(*EXPORTERS)])
def export_metadata(caller: Caller, store: StoreDep, layer: LAYER_ID,
                    crs: Annotated[OutputCrs, Query()] = "EPSG:4326",
                    format: ExportFormat = "geojson") -> dict:
    """What an export of the layer holds: its datum and build, and each field's Chinese
    title, unit and meaning (and, for coded fields, their codes' names)."""
    spec = spec_of(layer)
    return metadata(store, spec, crs, layer_scope(caller, spec), fmt=format)
