"""Evidence of a hazard's rectification: a photo or a file kept with the hazard.

An upload is one JPEG, PNG, WebP or PDF file. Its type is what it claims (the part's
``Content-Type``, else its name's suffix; the two must agree when both name a type), and the
claim is checked against the file's first bytes (its magic): a PNG named ``.jpg`` or a
script named ``.png`` is refused. It is kept under an id of the service's own, and always
served back as an attachment of the stored type (``GET /api/evidence/{id}``), never inline.

A photo (JPEG, PNG, WebP) is kept as a supervision record needs it, not as the phone wrote
it (``prepare``): it must decode as the format it claims (else a 400 naming the field, as is
a truncated file or one over MAX_PIXELS, checked from its header before any pixel is
decoded: a decompression bomb), is turned upright (its EXIF orientation), shrunk so its
long side is at most MAX_SIDE px, and encoded anew in its own format with no metadata at
all: no EXIF (the phone's GPS position, its serial number, a thumbnail that may show another
picture), no XMP, no comments or PNG text chunks. Colours are converted into sRGB when the
photo carries an ICC profile (a phone's Display P3, a CMYK scan) and the profile is dropped
too: the kept file shows the same colours in any viewer and carries no opaque blob. An
animated image keeps its first frame. Before the EXIF goes, the time the photo was taken
(DateTimeOriginal) is kept in the upload's audit entry, with the uploaded file's size and
SHA-256 (the record itself, its size and SHA-256, describe the kept file).

A PDF is kept exactly as uploaded (only its magic is checked): it is never opened here.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath

from PIL import ExifTags, Image, ImageCms, ImageOps

from layers.registry import ALL
from service.auth import Principal, Role
from service.errors import BadParameter, NotFound, bilingual
from service.scope import layer_scope
from service.store.base import Evidence, Store
from service.store.query import Condition, LayerQuery

FIELD = "file"
NAME_CHARS = 255
# media type -> (suffixes, Chinese name)
TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "image/jpeg": ((".jpg", ".jpeg"), "JPEG 照片"),
    "image/png": ((".png",), "PNG 图片"),
    "image/webp": ((".webp",), "WebP 图片"),
    "application/pdf": ((".pdf",), "PDF 文件"),
}
ALLOWED_ZH = "JPEG、PNG、WebP 照片或 PDF 文件"
GENERIC = ("", "application/octet-stream", "binary/octet-stream")
# the formats a photo is decoded and written as (Pillow's names)
PHOTO_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_SIDE = 2560  # the kept photo's long side, px: ample to read a nameplate or a weld
# a photo's pixels, from its header, before anything is decoded (a decompression bomb):
# takes a 50 or 64 megapixel phone's full-resolution photo, below Pillow's own warning
MAX_PIXELS = 70_000_000
JPEG_QUALITY = 85
WEBP_QUALITY = 85
TAKEN = "%Y:%m:%d %H:%M:%S"  # EXIF's DateTimeOriginal
OFFSET = re.compile(r"^[+-](0\d|1[0-4]):[0-5]\d$")  # EXIF's OffsetTimeOriginal
# who may attach evidence and read it back: those who move hazards (service/routes/work.py)
CLOSERS = (Role.ADMIN, Role.REGULATOR, Role.GRID_OFFICER)


def hazard_missing(hazard_id: str) -> NotFound:
    """The same 404 whether a hazard is missing or outside the caller's scope (as for a
    transition)."""
    return NotFound(bilingual(f"隐患 {hazard_id} 不存在（或不在您的管辖范围内）：请核对隐患编号",
                              f"hazard {hazard_id} not found (or outside your region): "
                              "check the hazard id"))


def hazard_in_scope(store: Store, caller: Principal, hazard_id: str) -> tuple[dict, dict]:
    """The stored hazard and the caller's row of its equipment, scoped exactly as a
    transition is (the equipment layer through the caller's scope), or the hazard's 404."""
    hazard = store.row("hazards", hazard_id)
    if hazard is None:
        raise hazard_missing(hazard_id)
    scope = layer_scope(caller, ALL["equipment"])
    found, _ = store.query_layer(LayerQuery("equipment", (*scope, Condition(
        "registration_code", "eq", (hazard["registration_code"],))), None, 1, 0))
    if found.empty:
        raise hazard_missing(hazard_id)
    return hazard, found.iloc[0].to_dict()


def _magic_ok(media_type: str, head: bytes) -> bool:
    """Whether ``head`` (the file's first bytes) starts as ``media_type`` does."""
    if media_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if media_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if media_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if media_type == "application/pdf":
        return head.startswith(b"%PDF-")
    return False


def shown_name(name: str | None) -> str:
    """The uploaded name as kept and shown: no folders, no control characters, at most
    NAME_CHARS (keeping the suffix); a name is only ever shown, escaped."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = "".join(c for c in base if c.isprintable()).strip() or "evidence"
    if len(base) > NAME_CHARS:
        suffix = PurePosixPath(base).suffix[:16]
        base = base[:NAME_CHARS - len(suffix)] + suffix
    return base


def _refuse(zh: str, en: str) -> BadParameter:
    return BadParameter(bilingual(f"上传文件（{FIELD}）{zh}", f"{FIELD}: {en}"))


def claimed_type(filename: str, content_type: str | None) -> str:
    """The media type the upload claims, or a 400 naming the field."""
    suffix = PurePosixPath(filename).suffix.lower()
    by_suffix = next((t for t, (s, _) in TYPES.items() if suffix in s), None)
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared == "image/jpg":
        declared = "image/jpeg"
    if declared not in GENERIC and declared not in TYPES:
        raise _refuse(f"的类型 {declared[:60]} 不允许：仅接受{ALLOWED_ZH}",
                      f"type {declared[:60]} not allowed: JPEG, PNG, WebP or PDF only")
    if declared in GENERIC:
        if by_suffix is None:
            raise _refuse(f"“{filename}”的类型无法识别：仅接受{ALLOWED_ZH}"
                          "（文件名须以 .jpg、.jpeg、.png、.webp 或 .pdf 结尾）",
                          "unknown type: JPEG, PNG, WebP or PDF only (.jpg, .jpeg, .png, "
                          ".webp or .pdf)")
        return by_suffix
    if by_suffix is not None and by_suffix != declared:
        raise _refuse(f"“{filename}”的文件名后缀与类型 {declared} 不一致",
                      f"the name's suffix does not match its type {declared}")
    return declared


def check_content(filename: str, media_type: str, content: bytes) -> None:
    """A 400 naming the field unless ``content`` is a non-empty file of ``media_type``."""
    if not content:
        raise _refuse("为空", "the file is empty")
    if not _magic_ok(media_type, content[:16]):
        raise _refuse(f"“{filename}”的内容不是{TYPES[media_type][1]}（与其声明的类型不符）："
                      f"仅接受{ALLOWED_ZH}",
                      f"the content is not {media_type} as claimed: JPEG, PNG, WebP or PDF "
                      "only")


@dataclass(frozen=True)
class Prepared:
    """What is kept of a checked upload: its bytes (a photo encoded anew, a PDF as sent),
    and what the audit entry tells of the upload as it came."""

    content: bytes
    uploaded_size: int
    uploaded_sha256: str
    encoded: bool = False  # a photo encoded anew (else the bytes as uploaded)
    taken_at: str | None = None  # the photo's DateTimeOriginal (ISO; the camera's clock)

    def facts(self) -> dict:
        """The upload as it came, for the audit entry: nothing for a file kept as sent."""
        if not self.encoded:
            return {}
        return {"uploaded_size": self.uploaded_size, "uploaded_sha256": self.uploaded_sha256,
                **({"taken_at": self.taken_at} if self.taken_at else {})}


def prepare(filename: str, media_type: str, content: bytes) -> Prepared:
    """The upload as kept, or a 400 naming the field: checked by its magic, then a photo
    decoded and encoded anew (upright, at most MAX_SIDE px, no metadata), a PDF as sent.
    CPU-bound (up to a second for a large photo): run it off the event loop."""
    check_content(filename, media_type, content)
    sha = hashlib.sha256(content).hexdigest()
    if media_type not in PHOTO_FORMATS:
        return Prepared(content, len(content), sha)
    photo, taken_at = _photo(filename, media_type, content)
    return Prepared(photo, len(content), sha, encoded=True, taken_at=taken_at)


def _photo(filename: str, media_type: str, content: bytes) -> tuple[bytes, str | None]:
    """The photo encoded anew in its own format, and when it was taken (if it says)."""
    fmt = PHOTO_FORMATS[media_type]
    try:
        image = Image.open(io.BytesIO(content), formats=[fmt])
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise _too_many_pixels(filename, width * height, f"{width}×{height}")
        if image.format not in (fmt, "MPO" if fmt == "JPEG" else fmt):
            raise _unreadable(filename, media_type)
        image.seek(0)  # an animation keeps its first frame
        if fmt == "JPEG" and max(width, height) > 2 * MAX_SIDE:
            # decoded at 1/2, 1/4 or 1/8 scale, still at least MAX_SIDE on the long side
            ratio = MAX_SIDE / max(width, height)
            image.draft(image.mode, (int(width * ratio) + 1, int(height * ratio) + 1))
        icc = image.info.get("icc_profile")
        image.load()  # a truncated or corrupt file fails here
    except Image.DecompressionBombError as exc:  # Pillow's own cap, above MAX_PIXELS
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(filename, int(found.group(1)) if found else None) from None
    except (BadParameter, MemoryError):
        raise
    except Exception:  # any failure to decode untrusted bytes is the upload's
        raise _unreadable(filename, media_type) from None
    try:
        exif = image.getexif()
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block: the photo as stored, and no time taken
        exif, upright = Image.Exif(), image
    try:
        if upright.mode in ("1", "P", "PA"):  # resized as such, a palette is resized coarsely
            upright = _plain_pixels(upright, fmt)
        upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        plain = _plain_pixels(_in_srgb(upright, icc), fmt)
    except (ValueError, OSError):  # a mode Pillow decodes but cannot convert
        raise _unreadable(filename, media_type) from None
    plain.info = {}  # else Pillow writes a comment, an ICC profile or tRNS kept there
    out = io.BytesIO()
    if fmt == "JPEG":
        plain.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif fmt == "PNG":
        plain.save(out, "PNG", optimize=True)
    else:
        plain.save(out, "WEBP", quality=WEBP_QUALITY)
    return out.getvalue(), _taken_at(exif)


def _in_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """The pixels converted from the photo's ICC profile into sRGB (what a browser assumes of
    an image without one); an unreadable profile, or one of another colour space than the
    pixels', is ignored (the pixels are taken as they are)."""
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space != ("CMYK" if image.mode == "CMYK" else "RGB"):
            return image
        # a profile of one's own per call: lcms caches what it reads in it (threads)
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(image, profile, srgb, outputMode=(
            "RGBA" if image.mode == "RGBA" else "RGB")) or image
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _plain_pixels(image: Image.Image, fmt: str) -> Image.Image:
    """The image in a mode its format writes plainly: L or RGB, with alpha (LA, RGBA) where
    it has any and the format keeps it (not JPEG); a palette, CMYK, 1-bit or 16-bit image
    converted."""
    if image.mode.startswith("I;16"):  # 16-bit grey: scaled, not clipped, to 8 bits
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    alpha = fmt != "JPEG" and image.has_transparency_data
    if fmt == "WEBP" and image.mode in ("L", "LA"):
        return image.convert("RGBA" if alpha else "RGB")
    if image.mode in (("RGBA", "LA") if alpha else ("RGB", "L")):
        return image
    return image.convert("RGBA" if alpha else "RGB")


def _taken_at(exif: Image.Exif) -> str | None:
    """When the photo was taken: EXIF's DateTimeOriginal (the camera's clock, with its
    offset when it gives one), or None if it is missing or not a time."""
    try:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        value = ifd.get(ExifTags.Base.DateTimeOriginal)
        if not isinstance(value, str):
            return None
        taken = datetime.strptime(value.strip("\x00 ")[:19], TAKEN)
        offset = ifd.get(ExifTags.Base.OffsetTimeOriginal)
        zone = offset.strip("\x00 ") if isinstance(offset, str) else ""
        return taken.isoformat() + (zone if OFFSET.match(zone) else "")
    except Exception:  # the time is a courtesy: a broken EXIF just has none
        return None


def _too_many_pixels(filename: str, pixels: int | None, size: str = "") -> BadParameter:
    cap = MAX_PIXELS // 10_000
    zh = f"有 {pixels // 10_000} 万像素（{size}）" if pixels and size else (
        f"有 {pixels // 10_000} 万像素" if pixels else "的像素过多")
    en = f"{pixels} pixels{f' ({size})' if size else ''}" if pixels else "too many pixels"
    return _refuse(f"“{filename}”{zh}，超过照片上限 {cap} 万像素（疑似解压炸弹）：请缩小后上传",
                   f"the image has {en}, over the limit of {MAX_PIXELS} pixels")


def _unreadable(filename: str, media_type: str) -> BadParameter:
    return _refuse(f"“{filename}”无法读取为{TYPES[media_type][1]}"
                   "（文件已损坏、不完整或与其类型不符）：请重新拍摄或导出后上传",
                   f"the file cannot be read as {media_type} (damaged, truncated or not of "
                   "its type): take or export it again")


def new_evidence(hazard_id: str, filename: str, media_type: str, content: bytes,
                 uploaded_by: str) -> Evidence:
    """The record of a checked upload (a fresh id, naive UTC time)."""
    return Evidence(
        evidence_id=f"EV{uuid.uuid4().hex.upper()}", hazard_id=hazard_id, filename=filename,
        media_type=media_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), uploaded_by=uploaded_by,
        uploaded_at=datetime.now(UTC).replace(tzinfo=None),
        audit_id=f"a-{uuid.uuid4().hex}")


def record(evidence: Evidence) -> dict:
    """What the API shows of an evidence item (never its bytes)."""
    return {"evidence_id": evidence.evidence_id, "hazard_id": evidence.hazard_id,
            "filename": evidence.filename, "media_type": evidence.media_type,
            "size": evidence.size, "sha256": evidence.sha256,
            "uploaded_by": evidence.uploaded_by,
            "uploaded_at": evidence.uploaded_at.replace(tzinfo=UTC).isoformat(
                timespec="seconds"),
            "url": f"/api/evidence/{evidence.evidence_id}"}


def audit_entry(evidence: Evidence, *, county_adcode: str | None, h3: str | None,
                prepared: Prepared | None = None) -> dict:
    """The upload's audit entry (``hazard.evidence``, on the hazard, placed where its
    equipment is): the hazard's history shows it. For a photo encoded anew it also tells
    the uploaded file's size and SHA-256 and when the photo was taken (``Prepared.facts``)."""
    facts = prepared.facts() if prepared is not None else {}
    after = {**{k: v for k, v in record(evidence).items() if k != "url"}, **facts}
    size = size_text(evidence.size)
    if "uploaded_size" in facts:
        size += f"，原 {size_text(facts['uploaded_size'])}"
    if facts.get("taken_at"):
        size += f"，拍摄于 {facts['taken_at'][:16].replace('T', ' ')}"
    return {"audit_id": evidence.audit_id, "at": evidence.uploaded_at,
            "actor": evidence.uploaded_by, "action": "hazard.evidence", "entity": "hazards",
            "entity_id": evidence.hazard_id, "before": None,
            "after": json.dumps({"evidence": after}, ensure_ascii=False),
            "note": f"上传证据：{evidence.filename}（{size}）",
            "county_adcode": county_adcode, "h3": h3}


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1 << 20:
        return f"{size / 1024:.1f} KB"
    return f"{size / 2**20:.1f} MB"
