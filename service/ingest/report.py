"""The ingest report: JSON for ``--report`` and the HTTP API, and a readable summary."""

from __future__ import annotations

import pandas as pd

from service.store.base import UpsertCounts


def build_report(batch_id: str, files: list[dict], per_kind: dict[str, dict[str, int]],
                 rejects: pd.DataFrame, flags: pd.DataFrame,
                 counts: dict[str, UpsertCounts] | None) -> dict:
    """The batch report; ``counts`` is None for the copy stored with the batch itself,
    which is written before the upsert counts are known."""
    row_rejects = rejects[rejects["field"] != "(file)"]
    rejected_rows = row_rejects[["file", "row"]].drop_duplicates()
    by_table = {}
    for kind, c in per_kind.items():
        uc = (counts or {}).get(kind, UpsertCounts())
        by_table[kind] = {**c, **({} if counts is None else {
            "inserted": uc.inserted, "updated": uc.updated, "unchanged": uc.unchanged})}
    upserts = {} if counts is None else {
        "inserted": int(sum(c.inserted for c in counts.values())),
        "updated": int(sum(c.updated for c in counts.values())),
        "unchanged": int(sum(c.unchanged for c in counts.values()))}
    return {
        "batch_id": batch_id,
        "files": files,
        "read": int(sum(c["read"] for c in per_kind.values())),
        **upserts,
        "rejected": len(rejected_rows),
        "files_rejected": int((rejects["field"] == "(file)").sum()),
        "flagged": len(flags[["file", "row"]].drop_duplicates()),
        "by_table": by_table,
        "by_reason": {str(k): int(v) for k, v in rejects["code"].value_counts().sort_index()
                      .items()},
        "by_flag": {str(k): int(v) for k, v in flags["code"].value_counts().sort_index().items()},
        "rejects": _records(rejects),
        "flags": _records(flags),
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    if frame.empty:
        return []
    out = pd.DataFrame({
        "file": frame["file"].astype(str),
        "row": frame["row"].astype(int),
        "field": frame["field"].astype(str),
        "code": frame["code"].astype(str),
        "reason": frame["reason_zh"].astype(str) + " / " + frame["reason_en"].astype(str),
        "value": frame["value"].astype("string"),
    })
    records = out.to_dict(orient="records")
    for r in records:  # JSON has no pd.NA
        if r["value"] is pd.NA:
            r["value"] = None
    return records


def summary_lines(report: dict) -> list[str]:
    """A readable Chinese/English console summary of a report."""
    lines = [
        f"批次 batch {report['batch_id']}",
        f"读取 read {report['read']}  新增 inserted {report['inserted']}  "
        f"更新 updated {report['updated']}  未变 unchanged {report['unchanged']}  "
        f"拒收 rejected {report['rejected']}  标记 flagged {report['flagged']}",
    ]
    for kind, c in report["by_table"].items():
        lines.append(f"  {kind:<10} read {c['read']:>8}  inserted {c['inserted']:>8}  "
                     f"updated {c['updated']:>7}  unchanged {c['unchanged']:>8}  "
                     f"rejected {c['rejected']:>6}")
    if report["by_reason"]:
        lines.append("拒收原因 reasons: " + ", ".join(f"{k}={v}" for k, v in
                                                  report["by_reason"].items()))
    if report["by_flag"]:
        lines.append("标记 flags: " + ", ".join(f"{k}={v}" for k, v in report["by_flag"].items()))
    for f in report["files"]:
        if f.get("error"):
            lines.append(f"  文件被拒 file refused: {f['path']}: {f['error']}")
    return lines
