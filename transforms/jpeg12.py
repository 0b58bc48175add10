"""A Pillow plugin for 12-bit JPEGs (``JPEG12``), decoded by ffmpeg.

libjpeg-turbo as Debian builds it (Pillow's, djpeg's and ImageMagick's decoder) reads
8-bit JPEGs only, so Pillow does not even identify a 12-bit file (medical and some
camera JPEGs) and the service used to call it "not an image". ffmpeg's mjpeg decoder
reads 12-bit samples. This plugin reads the header itself (size, components, EXIF,
ICC profile: the pixel limits are checked from it before anything is decoded) and
decodes only when the engine loads the pixels, by running ffmpeg on the file's bytes:
stdin to stdout, ``pipe`` the only protocol, ``jpeg_pipe`` the only demuxer, bounded by
TRANSFORMS_DEADLINE, to 8-bit RGB or grey. Registered when ``transforms.sources`` loads.
"""

from __future__ import annotations

import struct
import subprocess

from PIL import Image, ImageFile

from .conf import conf
from .errors import EngineUnavailable, TookTooLong

FORMAT = "JPEG12"
# Start-of-frame markers (every coding process but the hierarchical and arithmetic ones' DHP/JPG).
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _accept(prefix: bytes) -> bool:
    return prefix[:3] == b"\xff\xd8\xff"


class Jpeg12ImageFile(ImageFile.StubImageFile):
    format = FORMAT
    format_description = "12-bit JPEG (decoded by ffmpeg)"

    def _open(self) -> None:
        assert self.fp is not None
        self.fp.seek(2)
        icc: list[bytes] = []
        while True:
            marker, length = struct.unpack(">BBH", self.fp.read(4))[1:]
            data = self.fp.read(length - 2)
            if len(data) != length - 2:
                raise SyntaxError("truncated JPEG header")
            if marker == 0xE1 and data.startswith(b"Exif\0\0"):
                self.info["exif"] = data
            elif marker == 0xE2 and data.startswith(b"ICC_PROFILE\0"):
                icc.append(data[14:])
            elif marker in SOF_MARKERS:
                precision, height, width, components = struct.unpack(">BHHB", data[:6])
                break
            elif marker == 0xDA:
                raise SyntaxError("no frame header before the scan")
        if precision != 12 or components not in (1, 3) or width < 1 or height < 1:
            raise SyntaxError("not a 12-bit grey or colour JPEG")  # 8-bit JPEGs are Pillow's own plugin's
        if icc:
            self.info["icc_profile"] = b"".join(icc)
        self._mode = "L" if components == 1 else "RGB"
        self._size = (width, height)
        self.bits = 12

    def _load(self) -> ImageFile.StubHandler:
        return FfmpegDecoder()


class FfmpegDecoder(ImageFile.StubHandler):
    def open(self, im: ImageFile.StubImageFile) -> None:
        pass

    def load(self, im: ImageFile.StubImageFile) -> Image.Image:
        assert im.fp is not None
        im.fp.seek(0)
        data = im.fp.read()
        if getattr(im, "_exclusive_fp", False):  # opened by Pillow from a path: the image it becomes needs no file
            im.fp.close()
        pixel_format = "gray" if im.mode == "L" else "rgb24"
        argv = [conf.FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error",
                "-protocol_whitelist", "pipe", "-format_whitelist", "jpeg_pipe", "-f", "jpeg_pipe", "-i", "pipe:0",
                "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pixel_format, "pipe:1"]  # fmt: skip
        timeout = float(conf.DEADLINE)
        try:
            result = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise EngineUnavailable("12-bit JPEGs are decoded by ffmpeg, which is not installed here",
                                    tool=conf.FFMPEG) from None
        except subprocess.TimeoutExpired:
            raise TookTooLong(f"ffmpeg did not decode the 12-bit JPEG within {timeout:g} s") from None
        expected = im.size[0] * im.size[1] * (1 if im.mode == "L" else 3)
        if result.returncode != 0 or len(result.stdout) != expected:
            reason = result.stderr.decode("utf-8", "replace").strip()[-200:] or "short output"
            raise OSError(f"ffmpeg could not decode the 12-bit JPEG: {reason}")
        image = Image.frombytes(im.mode, im.size, result.stdout)
        image.info.update(im.info)
        return image


def register() -> None:
    Image.register_open(FORMAT, Jpeg12ImageFile, _accept)
