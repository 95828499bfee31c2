"""Uploads reach ffmpeg as one local file: a playlist or concat list is refused before any ffmpeg runs
(so ffmpeg never opens the files or URLs it names), and every ffmpeg command that reads an upload
allows the ``file`` protocol only."""

import subprocess

import pytest

from emo_core import InvalidInputError, analyze_video
from emo_core.audio import analyze_audio, load_audio
from emo_core.ffmpeg_input import PROTOCOL_OPTIONS, ffmpeg_binary, text_kind


@pytest.fixture(scope="module")
def segment(clips, tmp_path_factory):
    """The jaw-drop clip with its speech as an MPEG-TS segment, the kind of file an HLS playlist lists."""
    path = tmp_path_factory.mktemp("segments") / "segment0.ts"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-i", str(clips["speech"]), "-c", "copy",
                    "-f", "mpegts", str(path)], check=True, timeout=60)
    return path


def hls_playlist(target: str) -> str:
    return ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:4.0,\n{target}\n#EXT-X-ENDLIST\n")


@pytest.fixture
def ffmpeg_runs(monkeypatch):
    """The command lines of every process started while the test runs (they still run; ``subprocess.run``
    starts them through ``Popen`` too)."""
    commands = []

    class Popen(subprocess.Popen):
        def __init__(self, command, *args, **kwargs):
            commands.append([str(part) for part in command])
            super().__init__(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    return commands


def test_ffmpeg_alone_would_play_the_segment_a_playlist_names(segment, tmp_path):
    """The threat is real: asked plainly, even with the protocol whitelist (the segment is a local file),
    ffmpeg opens an uploaded playlist and reads the video it points at."""
    playlist = tmp_path / "clip.m3u8"
    playlist.write_text(hls_playlist(str(segment)))
    for options in ([], list(PROTOCOL_OPTIONS)):
        header = subprocess.run([ffmpeg_binary(), "-hide_banner", "-nostdin", *options, "-i", str(playlist)],
                                capture_output=True, text=True, timeout=60).stderr
        assert "Input #0, hls" in header and "Video: h264" in header and "Audio: aac" in header


@pytest.mark.parametrize("name", ["clip.m3u8", "clip.mp4"])
@pytest.mark.parametrize("target", ["segment", "file:///etc/passwd", "http://127.0.0.1:9/segment0.ts"])
def test_uploaded_hls_playlists_are_refused_before_ffmpeg_opens_them(segment, tmp_path, settings, ffmpeg_runs,
                                                                      name, target):
    upload = tmp_path / name
    upload.write_text(hls_playlist(str(segment) if target == "segment" else target))
    with pytest.raises(InvalidInputError, match=f"{name} is an HLS playlist, not a video"):
        analyze_video(upload, settings=settings, task="emotion")
    for read_audio in (load_audio, analyze_audio):
        with pytest.raises(InvalidInputError, match=f"{name} is an HLS playlist, not a readable video or audio"):
            read_audio(upload)
    assert ffmpeg_runs == [], "ffmpeg was started on the playlist"


@pytest.mark.parametrize("text, kind", [
    ("ffconcat version 1.0\nfile '{segment}'\n", "an ffconcat list of files"),
    ("\ufeff  #EXTM3U\n#EXTINF:4.0,\n{segment}\n", "an HLS playlist"),  # byte-order mark, spaces
    ("#extm3u\n{segment}\n", "an HLS playlist"),
    ('<?xml version="1.0"?>\n<MPD><BaseURL>{segment}</BaseURL></MPD>\n', "an XML document"),
    ("v=0\no=- 0 0 IN IP4 127.0.0.1\nc=IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\n", "an SDP stream description"),
    ("file {segment}\n" * 3, "a text file"),
    ("Vidéo à lire : " + "é" * 3000, "a text file"),  # UTF-8 text cut inside a character by the sniff
])
def test_text_uploads_are_refused_whatever_their_name(segment, tmp_path, settings, ffmpeg_runs, text, kind):
    upload = tmp_path / "holiday.mp4"
    upload.write_text(text.format(segment=segment), encoding="utf-8")
    assert text_kind(upload).startswith(kind)
    with pytest.raises(InvalidInputError, match=f"holiday.mp4 is {kind}"):
        analyze_video(upload, settings=settings, task="emotion")
    with pytest.raises(InvalidInputError, match=f"holiday.mp4 is {kind}"):
        load_audio(upload)
    assert ffmpeg_runs == []


def test_media_files_are_not_taken_for_text(clips, segment, tmp_path):
    from tests import media, media_av

    wav = media_av.silence_wav(tmp_path / "quiet.wav", 1.0, noise_dbfs=-50)
    recording = media_av.streamed_recording(clips["speech"], tmp_path / "webcam.webm")
    y4m = media_av.y4m_video(media.expression_frames(n_frames=3), tmp_path / "face.y4m")
    for path in (clips["speech"], clips["mute"], clips["no_face"], segment, wav, recording, y4m):
        assert text_kind(path) is None, path.name


def test_every_ffmpeg_run_on_an_upload_reads_one_local_file(clips, tmp_path, settings, ffmpeg_runs):
    """A webcam recording (remuxed first, as it declares no duration) and a plain clip, video and audio:
    every ffmpeg input is the upload (or the remuxed copy) as ``file:<path>`` under the whitelist."""
    from tests import media_av

    recording = media_av.streamed_recording(clips["speech"], tmp_path / "webcam.webm")
    ffmpeg_runs.clear()
    for upload in (recording, clips["speech"]):
        result = analyze_video(upload, settings=settings, task="emotion")
        assert result.peak_index is not None and "championship" in result.transcript.lower()
    runs = [command for command in ffmpeg_runs if command[0] == ffmpeg_binary()]
    assert len(runs) >= 8  # headers, remux, frames, the peak window, the audio; for both files
    assert any("-c" in command and "copy" in command for command in runs)  # the remux ran
    for command in runs:
        inputs = [command[i + 1] for i, part in enumerate(command) if part == "-i"]
        assert len(inputs) == 1, command
        position = command.index("-i")
        assert command[position - 2:position] == list(PROTOCOL_OPTIONS), command
        assert inputs[0].startswith("file:") and inputs[0].endswith((".webm", ".mkv", ".mp4")), command


def test_ffmpeg_errors_name_the_file_not_its_folder(clips, tmp_path, settings):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clips["speech"].read_bytes()[:2000])
    for read in (lambda p: analyze_video(p, settings=settings, task="emotion"), load_audio):
        with pytest.raises(InvalidInputError) as caught:
            read(broken)
        assert "broken.mp4" in str(caught.value) and str(tmp_path) not in str(caught.value)
