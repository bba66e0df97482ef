"""A catalogue of hostile and broken upload files for the bad-input bench: images and ECGs, each small on disk.

Each entry is ``(name, filename, bytes, content_type)``. The files are built in memory from the project's own
writers (``write_wfdb``) and the standard formats' published structures, so each one is exactly the defect its
name says (a PNG whose header claims 10⁹ pixels, a zip whose member CRC is wrong, a WFDB header at 1 Hz, ...).
"""

from __future__ import annotations

import io
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "image_cases",
    "ecg_cases",
    "good_fundus",
    "good_gray",
    "good_ecg_csv",
    "good_ecg_zip",
    "BadFile",
    "CONTRACT_CASES",
]

#: Files each decoder reads but the analyzers that would use them refuse (too small, one lead, 0.02 s): refusing
#: them *at upload* is the analyzer contract of issue #10; the bench reports them in their own column.
CONTRACT_CASES = frozenset(
    {"64x64 photograph", "20000x64 photograph", "10-sample CSV (0.02 s)", "1-lead WFDB record", "CSV with NaN samples"}
)

BadFile = tuple[str, str, bytes, str]

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def good_fundus(seed: int = 0, size: int = 256) -> bytes:
    """A synthetic colour fundus-like JPEG (a red-orange disc on black)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse([8, 8, size - 8, size - 8], fill=(180 + int(rng.integers(0, 40)), 80, 30))
    draw.ellipse([size // 2, size // 3, size // 2 + 30, size // 3 + 30], fill=(250, 220, 150))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def good_gray(size: int = 128) -> bytes:
    return _png(np.tile(np.linspace(0, 255, size, dtype=np.uint8), (size, 1)))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int, bit_depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose IHDR claims ``width`` × ``height`` with a tiny (valid-CRC) compressed stream."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def image_cases(*, max_upload_bytes: int, colour: bool) -> list[BadFile]:
    """Bad files for an image slot (``colour``: a fundus slot needing RGB)."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    png = _png(rgb)
    cases: list[BadFile] = [
        ("empty file", "empty.png", b"", "image/png"),
        ("text as an image", "notes.png", b"this is not an image\n" * 10, "image/png"),
        ("truncated PNG", "cut.png", png[: len(png) // 3], "image/png"),
        ("PNG header claiming 10^9 pixels", "bomb.png", _png_claiming(40_000, 25_000), "image/png"),
        ("PNG header claiming 65535x65535", "bomb2.png", _png_claiming(65_535, 65_535), "image/png"),
        ("16-bit PNG", "deep.png", _png((rgb.astype(np.uint16) * 257)[..., 0]), "image/png"),
        ("8x8 thumbnail", "tiny.png", _png(rgb[:8, :8]), "image/png"),
        (
            "corrupt JPEG body",
            "bad.jpg",
            b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 3000, dtype=np.uint8)),
            "image/jpeg",
        ),
        ("GIF (unsupported type)", "anim.gif", b"GIF89a" + bytes(200), "image/gif"),
        ("PDF in an image slot", "scan.pdf", b"%PDF-1.4\n" + b"0" * 500, "application/pdf"),
        ("zip named .png", "x.png", _zip({"a.txt": b"hello"}), "image/png"),
        ("RIFF without WEBP", "x.webp", b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(64), "image/webp"),
        ("BMP header claiming 10^9 pixels", "bomb.bmp", _bmp_claiming(50_000, 50_000), "image/bmp"),
        ("file above the upload limit", "huge.png", b"\x89PNG\r\n\x1a\n" + bytes(max_upload_bytes + 16), "image/png"),
        ("path-traversal file name", "../../etc/passwd", b"root:x:0:0\n", "text/plain"),
    ]
    if colour:
        cases.append(("grayscale photograph in a colour slot", "gray.png", good_gray(), "image/png"))
    cases.append(("64x64 photograph", "small.png", _png(rgb[:64, :64]), "image/png"))
    cases.append(("20000x64 photograph", "strip.png", _png(np.zeros((64, 20_000, 3), np.uint8)), "image/png"))
    return cases


def _bmp_claiming(width: int, height: int) -> bytes:
    header = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + info + bytes(64)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _signal(n: int, fs: float, leads: int = 12) -> np.ndarray:
    t = np.arange(n) / fs
    beats = np.sin(2 * np.pi * 1.2 * t) ** 15
    return np.stack([0.8 * beats + 0.02 * np.sin(2 * np.pi * (i + 1) * t) for i in range(leads)])


def _wfdb_members(fs: float = 500.0, n: int = 5000, leads: tuple[str, ...] = LEADS) -> dict[str, bytes]:
    from vitalens.io.ecg import write_wfdb

    with tempfile.TemporaryDirectory() as tmp:
        hea = write_wfdb(Path(tmp), "rec", _signal(n, fs, len(leads)), fs, leads)
        return {"rec.hea": hea.read_bytes(), "rec.dat": (Path(tmp) / "rec.dat").read_bytes()}


def good_ecg_zip() -> bytes:
    return _zip(_wfdb_members())


def good_ecg_csv(fs: float = 500.0, n: int = 5000) -> bytes:
    sig = _signal(n, fs)
    rows = ["time_s," + ",".join(LEADS)]
    rows += [f"{i / fs:.4f}," + ",".join(f"{v:.4f}" for v in sig[:, i]) for i in range(n)]
    return "\n".join(rows).encode()


def _edit_record_line(members: dict[str, bytes], edit: Callable[[list[str]], None]) -> dict[str, bytes]:
    lines = members["rec.hea"].decode().splitlines()
    parts = lines[0].split()
    edit(parts)
    lines[0] = " ".join(parts)
    return {**members, "rec.hea": ("\n".join(lines) + "\n").encode()}


def _bad_crc_zip() -> bytes:
    members = _wfdb_members(n=1000)
    data = bytearray(_zip(members, zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("rec.dat")
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    data[info.header_offset + 30 + name_len + 200] ^= 0xFF
    return bytes(data)


def ecg_cases(*, max_upload_bytes: int) -> list[BadFile]:
    """Bad files for an ECG slot."""
    wf = _wfdb_members(n=1000)
    csv_short = (
        "time_s," + ",".join(LEADS) + "\n" + "\n".join(f"{i / 500:.3f}," + ",".join(["0.1"] * 12) for i in range(10))
    ).encode()
    laughs = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE RestingECG [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n'
        "<RestingECG>&c;</RestingECG>"
    )
    xxe = '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<RestingECG>&x;</RestingECG>'
    npy_pickle = io.BytesIO()
    np.save(npy_pickle, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    npz_bomb = io.BytesIO()
    np.savez_compressed(npz_bomb, signal=np.zeros((12, 1_000_000)), fs_hz=np.array(500.0))
    return [
        ("empty file", "ecg.csv", b"", "text/csv"),
        ("zip member with a bad CRC", "rec.zip", _bad_crc_zip(), "application/zip"),
        (
            "zip bomb (inflates to 200 MB)",
            "rec.zip",
            _zip({"rec.hea": wf["rec.hea"], "rec.dat": bytes(200 * 2**20)}),
            "application/zip",
        ),
        (
            "zip member with a path",
            "rec.zip",
            _zip({"../rec.hea": wf["rec.hea"], "rec.dat": wf["rec.dat"]}),
            "application/zip",
        ),
        ("zip with two headers", "rec.zip", _zip({**wf, "rec2.hea": wf["rec.hea"]}), "application/zip"),
        ("zip without a header", "rec.zip", _zip({"rec.dat": wf["rec.dat"]}), "application/zip"),
        ("zip with a program in it", "rec.zip", _zip({**wf, "setup.exe": b"MZ" + bytes(100)}), "application/zip"),
        ("truncated zip", "rec.zip", _zip(wf)[:300], "application/zip"),
        ("WFDB without its .dat", "rec.zip", _zip({"rec.hea": wf["rec.hea"]}), "application/zip"),
        (
            "WFDB header at -100 Hz",
            "rec.zip",
            _zip(_edit_record_line(wf, lambda p: p.__setitem__(2, "-100"))),
            "application/zip",
        ),
        (
            "WFDB 12 leads x 100,000 s at 1 Hz",
            "rec.zip",
            _zip(_edit_record_line(wf, lambda p: (p.__setitem__(2, "1"), p.__setitem__(3, "100000")))),
            "application/zip",
        ),
        (
            "WFDB header at 10^9 Hz",
            "rec.zip",
            _zip(_edit_record_line(wf, lambda p: p.__setitem__(2, "1000000000"))),
            "application/zip",
        ),
        (
            "WFDB header declaring 10^12 samples",
            "rec.zip",
            _zip(_edit_record_line(wf, lambda p: p.__setitem__(3, "1000000000000"))),
            "application/zip",
        ),
        (
            "WFDB header with a text rate",
            "rec.zip",
            _zip(_edit_record_line(wf, lambda p: p.__setitem__(2, "fast"))),
            "application/zip",
        ),
        ("UTF-16 XML with nested entities", "muse.xml", laughs.encode("utf-16"), "application/xml"),
        ("XML with an external entity", "muse.xml", xxe.encode(), "application/xml"),
        ("XML that is no ECG", "note.xml", b'<?xml version="1.0"?><note><to>x</to></note>', "application/xml"),
        ("malformed XML", "muse.xml", b"<RestingECG><Waveform>", "application/xml"),
        ("DICOM magic with garbage", "ecg.dcm", bytes(128) + b"DICM" + bytes(300), "application/dicom"),
        ("CSV without a header row", "ecg.csv", b"\n".join(b"0.1,0.2,0.3" for _ in range(100)), "text/csv"),
        ("CSV with text cells", "ecg.csv", b"time_s,I,II\n0,a,b\n0.002,c,d\n", "text/csv"),
        (
            "CSV with NaN samples",
            "ecg.csv",
            b"time_s,I,II\n" + b"\n".join(f"{i / 500:.3f},nan,0.1".encode() for i in range(1000)),
            "text/csv",
        ),
        (
            "CSV with a backwards time column",
            "ecg.csv",
            b"time_s,I,II\n" + b"\n".join(f"{-i / 500:.3f},0.1,0.2".encode() for i in range(1000)),
            "text/csv",
        ),
        ("10-sample CSV (0.02 s)", "ecg.csv", csv_short, "text/csv"),
        # V1 alone: no analyzer can use it (ecg.ptbxl needs 12 leads, ecg.intervals lead II; a lead-II strip is a
        # valid input for the intervals, so it would not be a bad input)
        ("1-lead WFDB record", "rec.zip", _zip(_wfdb_members(n=5000, leads=("V1",))), "application/zip"),
        ("NumPy object array (pickle)", "ecg.npy", npy_pickle.getvalue(), "application/octet-stream"),
        ("npz inflating to 96 MB", "ecg.npz", npz_bomb.getvalue(), "application/octet-stream"),
        ("a photograph in the ECG slot", "ecg.png", _png(np.zeros((80, 80, 3), np.uint8)), "image/png"),
        ("unknown suffix", "ecg.exe", b"MZ" + bytes(100), "application/octet-stream"),
        ("path-traversal file name", "../../etc/ecg.csv", good_ecg_csv(n=1000), "text/csv"),
        ("file name with NUL", "ecg\x00.csv", good_ecg_csv(n=1000), "text/csv"),
        ("file above the upload limit", "big.csv", b"I\n" + b"0.1\n" * (max_upload_bytes // 4 + 16), "text/csv"),
    ]
