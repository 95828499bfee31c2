"""How every ffmpeg run opens an uploaded file: as one local file, never as a list of other files or URLs.

ffmpeg picks the demuxer from a file's content, not from its name, and some demuxers open what the
file names: an HLS playlist (``#EXTM3U``) lists segments and keys by path or URL, an ffconcat script
lists files, SDP and DASH descriptions point at network streams. An upload called ``clip.mp4`` may be
any of them. So:

* ``input_args`` first reads the upload's opening bytes and refuses text (``InvalidInputError``): every
  container we read (MP4/MOV, Matroska/WebM, AVI, WAV, MP3, Ogg, FLAC, AAC) is binary and all of those
  formats are text, so ffmpeg never opens such a file;
* then it opens the upload as ``file:<path>`` with ``-protocol_whitelist file``: whatever a demuxer
  follows, ffmpeg may use no other protocol (http, tcp, data, subfile, concat, ...).

Every ffmpeg command on an upload takes its input from ``input_args``; ``read_header`` is the one
``ffmpeg -i`` probe and ``parse_header`` reads it with moviepy's parser.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .errors import InvalidInputError

PROTOCOL_OPTIONS = ("-protocol_whitelist", "file")  # input options: ffmpeg may open local files only
SNIFF_BYTES = 4096  # the opening bytes looked at; every reference format above starts with its keyword
HEADER_TIMEOUT_S = 60  # ``ffmpeg -i`` reads a header (or, to measure a duration, the whole file: 300 s)
DECODE_TIMEOUT_S = 300
_CONTROL_BYTES = set(range(0, 32)) - {9, 10, 12, 13}  # text has none of these (tab, newlines, form feed allowed)
_NAMED_TEXT = (  # opening keyword -> what the file is
    (b"#EXTM3U", "an HLS playlist"),
    (b"ffconcat", "an ffconcat list of files"),
    (b"<?xml", "an XML document (such as a DASH manifest)"),
    (b"<MPD", "a DASH manifest"),
    (b"v=0", "an SDP stream description"),
)
_TEXT_HEADED_MEDIA = (b"YUV4MPEG2",)  # raw video whose header line is text (its pixels may look like text too)


def ffmpeg_binary() -> str:
    """The ffmpeg that moviepy uses (imageio-ffmpeg's, unless configured otherwise)."""
    from moviepy.config import FFMPEG_BINARY

    return FFMPEG_BINARY


def text_kind(path: str | Path) -> str | None:
    """What a text upload is ("an HLS playlist", "a text file", ...), or None for a binary file."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        return None
    opening = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    for keyword, kind in _NAMED_TEXT:
        if opening[:len(keyword)].upper() == keyword.upper():
            return kind
    if head.startswith(_TEXT_HEADED_MEDIA) or _CONTROL_BYTES.intersection(head):
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut_at_the_end = exc.reason == "unexpected end of data" and len(head) == SNIFF_BYTES
        if not cut_at_the_end:
            return None
    return "a text file"


def input_args(path: str | Path, what: str) -> list[str]:
    """ffmpeg's input options for the upload ``path``; raises ``InvalidInputError`` ("<name> is an HLS
    playlist, not <what>") for text files."""
    path = Path(path)
    kind = text_kind(path)
    if kind is not None:
        raise InvalidInputError(f"{path.name} is {kind}, not {what}")
    return [*PROTOCOL_OPTIONS, "-i", f"file:{path}"]


def read_header(path: str | Path, what: str, *, decode_file: bool = False) -> str:
    """What ``ffmpeg -i`` says about the upload (stderr; it exits with an error, as no output is given).
    ``decode_file`` decodes the whole file, which makes ffmpeg print the decoded duration (``time=``)."""
    command = [ffmpeg_binary(), "-hide_banner", "-nostdin", *input_args(path, what)]
    if decode_file:
        command += ["-f", "null", "-"]
    timeout = DECODE_TIMEOUT_S if decode_file else HEADER_TIMEOUT_S
    try:
        done = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InvalidInputError(f"reading {Path(path).name} took over {timeout} s") from None
    return done.stderr.decode("utf-8", errors="ignore")


def parse_header(header: str, path: str | Path, *, fps_source: str = "fps", decode_file: bool = False) -> dict:
    """moviepy's reading of ``read_header``'s text (``ffmpeg_parse_infos``'s dict). Raises ``OSError``
    with ffmpeg's text when it cannot be parsed, as ``ffmpeg_parse_infos`` does."""
    from moviepy.video.io.ffmpeg_reader import FFmpegInfosParser

    try:
        return FFmpegInfosParser(header, str(path), fps_source=fps_source, check_duration=True,
                                 decode_file=decode_file).parse()
    except Exception as exc:
        raise OSError(f"Error passing `ffmpeg -i` command output:\n\n{header}") from exc


def ffmpeg_reason(ffmpeg_output: str, path: str | Path) -> str:
    """The most telling line of an ffmpeg error output, without its ``[in#0 @ 0x...]`` prefix and with
    the upload's path shortened to its name (messages never show server paths)."""
    path = Path(path)
    text = ffmpeg_output.replace(f"file:{path}", path.name).replace(str(path), path.name)
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("Error passing")]
    for line in lines:
        if "moov atom not found" in line or "Invalid data" in line or "Duration: N/A" in line:
            return line.rstrip(".,")
    return lines[0][:200] if lines else "ffmpeg gave no reason"
