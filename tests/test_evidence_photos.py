"""Evidence photos are kept as a supervision record needs them (service/evidence.py): turned
upright, at most MAX_SIDE px on the long side, encoded anew without EXIF (the phone's GPS
position, its serial number), XMP or text chunks; when the photo was taken and the upload's
own size stay in the audit entry; a decompression bomb, a truncated photo or a photo of
another type than it claims is refused with a 400 naming the field ``file``."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, PngImagePlugin

from service import evidence as kept
from service.app import create_app
from service.settings import Settings
from service.store import open_store
from tests.servers import call
from tests.test_evidence import _fill_more, upload
from tests.test_write_scope import HENAN_PIECE

SERIAL = "SERIAL-4711-PHONE"


@pytest.fixture()
def served(filled_store):
    filled = filled_store(_fill_more)
    settings = Settings(store=filled.url, max_evidence_mb=20)
    with TestClient(create_app(settings)) as client:
        yield {"client": client, "tokens": filled.facts, "url": filled.url}


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def phone_jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    """A phone's photo: stored top-left corner red, with the EXIF a phone writes (GPS
    position, serial number, when it was taken, how to turn it)."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone X"
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2026:03:01 10:20:30"
    details[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    details[ExifTags.Base.BodySerialNumber] = SERIAL
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (34.0, 45.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (113.0, 37.0, 48.25)
    return encoded(image, "JPEG", quality=95, exif=exif.tobytes(), comment=b"phone comment")


def red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def kept_bytes(served, body: dict) -> bytes:
    got = call(served, "officer", "GET", body["url"])
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"].startswith("attachment;")
    return got.content


def refused(response) -> str:
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "file" in detail
    return detail


def nothing_kept(served) -> bool:
    with open_store(served["url"]) as store:
        return store.evidence_for("YH-HN") == []


def test_phone_photo_upright_small_and_without_exif(served):
    sent = phone_jpeg((4000, 3000), orientation=6)  # stored landscape, shown portrait
    response = upload(served, "officer", "现场.jpg", sent, "image/jpeg")
    assert response.status_code == 201, response.text
    body = response.json()
    content = kept_bytes(served, body)
    assert body["size"] == len(content) < len(sent)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["uploaded_size"] == len(sent)
    assert body["uploaded_sha256"] == hashlib.sha256(sent).hexdigest()
    assert body["taken_at"] == "2026-03-01T10:20:30+08:00"
    photo = Image.open(io.BytesIO(content))
    assert photo.format == "JPEG" and photo.size == (kept.MAX_SIDE * 3 // 4, kept.MAX_SIDE)
    # orientation 6: turned a quarter clockwise, the stored top-left is now the top-right
    assert red(photo.getpixel((photo.width - 20, 20))) and not red(photo.getpixel((20, 20)))
    assert not photo.getexif() and "exif" not in photo.info and "comment" not in photo.info
    for secret in (b"Exif", SERIAL.encode(), b"PhoneMaker", b"phone comment"):
        assert secret not in content
    # the audit entry keeps what the EXIF told a regulator, and the upload's size
    trail = call(served, "admin", "GET", "/api/audit", params={"action": "hazard.evidence"})
    assert trail.status_code == 200, trail.text
    assert "2026-03-01T10:20:30+08:00" in trail.text and "拍摄于 2026-03-01 10:20" in trail.text


def test_large_photo_downscaled_and_listed_in_the_history(served):
    sent = phone_jpeg((6000, 4000))
    response = upload(served, "officer", "全景.jpg", sent, "image/jpeg")
    assert response.status_code == 201, response.text
    body = response.json()
    photo = Image.open(io.BytesIO(kept_bytes(served, body)))
    assert photo.size == (kept.MAX_SIDE, round(kept.MAX_SIDE * 4000 / 6000))
    # the hazard's history lists the kept file
    with open_store(served["url"]) as store:
        code = store.row("equipment", HENAN_PIECE)["unit_credit_code"]
    unit = call(served, "officer", "GET", f"/api/units/{code}/file").json()
    hazard = next(h for h in unit["hazards"] if h["hazard_id"] == "YH-HN")
    shown = [e["evidence"] for e in hazard["history"] if e.get("evidence")]
    assert shown == [{"evidence_id": body["evidence_id"], "filename": "全景.jpg",
                      "media_type": "image/jpeg", "size": body["size"], "url": body["url"]}]


def test_small_photo_keeps_its_size_but_not_its_metadata(served):
    sent = phone_jpeg((800, 600))
    body = upload(served, "officer", "a.jpg", sent, "image/jpeg").json()
    photo = Image.open(io.BytesIO(kept_bytes(served, body)))
    assert photo.size == (800, 600) and not photo.getexif()


def test_png_loses_its_text_chunks(served):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret note")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>GPS 34.75</x:xmpmeta>")
    info.add_text("Software", "PhoneMaker Editor")
    sent = encoded(Image.new("RGBA", (3000, 1000), (0, 128, 0, 200)), "PNG", pnginfo=info)
    response = upload(served, "officer", "截图.png", sent, "image/png")
    assert response.status_code == 201, response.text
    content = kept_bytes(served, response.json())
    photo = Image.open(io.BytesIO(content))
    assert photo.format == "PNG" and photo.size == (kept.MAX_SIDE, round(kept.MAX_SIDE / 3))
    assert photo.mode == "RGBA"
    assert all(abs(a - b) <= 2 for a, b in zip(photo.getpixel((5, 5)), (0, 128, 0, 200),
                                                strict=True))
    assert photo.info == {} and not photo.text
    for secret in (b"secret note", b"xmpmeta", b"PhoneMaker", b"tEXt", b"iTXt"):
        assert secret not in content
    assert "taken_at" not in response.json()


def test_webp_and_cmyk_kept_in_their_format(served):
    # a broken EXIF block does not refuse a photo that decodes: it goes with the rest
    webp = encoded(Image.new("RGB", (300, 200), "blue"), "WEBP", exif=b"Exif\x00\x00MM*")
    body = upload(served, "officer", "a.webp", webp, "image/webp").json()
    content = kept_bytes(served, body)
    assert Image.open(io.BytesIO(content)).format == "WEBP" and b"EXIF" not in content
    cmyk = encoded(Image.new("CMYK", (300, 200), (0, 255, 255, 0)), "JPEG")
    body = upload(served, "officer", "scan.jpg", cmyk, "image/jpeg").json()
    photo = Image.open(io.BytesIO(kept_bytes(served, body)))
    assert photo.mode == "RGB" and photo.getpixel((5, 5))[0] > 200


def test_pdf_kept_as_uploaded(served):
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(64)
    body = upload(served, "officer", "验收报告.pdf", pdf, "application/pdf").json()
    assert kept_bytes(served, body) == pdf and body["size"] == len(pdf)
    assert "uploaded_size" not in body and "taken_at" not in body


@pytest.mark.parametrize("size", [(20000, 20000), (10000, 8000)])
def test_decompression_bomb_refused(served, size):
    bomb = encoded(Image.new("1", size), "PNG")  # a small file, a huge picture
    assert len(bomb) < 100_000
    detail = refused(upload(served, "officer", "bomb.png", bomb, "image/png"))
    assert "万像素" in detail and "pixels" in detail
    assert nothing_kept(served)


def test_truncated_or_disguised_photo_refused(served):
    whole = phone_jpeg((800, 600))
    detail = refused(upload(served, "officer", "半张.jpg", whole[:len(whole) // 2],
                            "image/jpeg"))
    assert "无法读取" in detail and "truncated" in detail
    png = encoded(Image.new("RGB", (50, 50), "red"), "PNG")
    refused(upload(served, "officer", "photo.jpg", png, "image/jpeg"))  # a PNG named .jpg
    refused(upload(served, "officer", "photo.jpg", png, "application/octet-stream"))
    # JPEG magic, then no JPEG at all
    refused(upload(served, "officer", "fake.jpg", b"\xff\xd8\xff\xe0" + png, "image/jpeg"))
    assert nothing_kept(served)


def test_taken_at_only_when_the_photo_says():
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "not a time"
    sent = encoded(Image.new("RGB", (40, 30)), "JPEG", exif=exif.tobytes())
    prepared = kept.prepare("a.jpg", "image/jpeg", sent)
    assert prepared.taken_at is None and "taken_at" not in prepared.facts()
    entry = kept.audit_entry(kept.new_evidence("YH-1", "a.jpg", "image/jpeg",
                                               prepared.content, "u1"),
                             county_adcode=None, h3=None, prepared=prepared)
    after = json.loads(entry["after"])["evidence"]
    assert after["uploaded_size"] == len(sent) and after["size"] == len(prepared.content)
    assert "原" in entry["note"]
