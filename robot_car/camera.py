"""Cameras for the car: the Pi camera (picamera2) and any OpenCV source (a laptop webcam, a USB camera, a video file).

Both implement :class:`edgepilot.pilot.core.hal.Camera`. A capture thread keeps only the newest frame, so the loop never works on a
backlog and never waits for the sensor; ``read()`` returns that frame (or None before the first one) and raises a
clear :class:`InputError` once the source has stopped delivering. Frames are BGR, as OpenCV and the rest of edgepilot
expect. picamera2 and cv2 are imported inside the classes, so importing this module costs nothing on a laptop.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable

import numpy as np

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.hal import Camera
from edgepilot.pilot.core.messages import Frame

log = logging.getLogger(__name__)

PICAMERA2_MISSING = (
    "picamera2 is not importable here ({reason}). On Raspberry Pi OS: sudo apt install python3-picamera2, and run "
    "edgepilot from a venv created with --system-site-packages (python3 -m venv --system-site-packages ~/edgepilot-venv) "
    "so the venv sees it; pip cannot install libcamera"
)
#: apt's simplejpeg (imported by picamera2) is built for Debian's numpy 1.x; a venv with numpy 2 breaks it.
SIMPLEJPEG_NUMPY_MISMATCH = (
    "picamera2 cannot load with this venv's numpy {numpy} ({reason}): apt's simplejpeg was built for numpy 1. "
    "Fix inside the venv: pip install --no-deps --force-reinstall simplejpeg"
)


class _LatestFrameGrabber:
    """Calls ``grab()`` on a thread and keeps only the newest image, stamped on ``clock``.

    ``grab`` returns an image, or None when the source has ended. ``pace_s`` spaces out grabs for sources that would
    otherwise deliver as fast as they can be decoded (video files), so they play at their own frame rate.
    """

    def __init__(self, grab: Callable[[], np.ndarray | None], source: str, clock: Clock,
                 pace_s: float | None = None) -> None:
        self._grab = grab
        self.source = source
        self._clock = clock
        self._pace_s = pace_s
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._count = 0
        self._failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{source}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                image = self._grab()
            except Exception as exc:  # reported to the reader as one clear error
                failure = f"{type(exc).__name__}: {exc}"
                image = None
            else:
                failure = "the source ended" if image is None else None
            if failure is not None:
                if not self._stop.is_set():
                    log.error("camera %s stopped: %s", self.source, failure)
                with self._lock:
                    self._failure = failure
                return
            with self._lock:
                self._frame = Frame(image=image, t_s=self._clock.now(), index=self._count, source=self.source)
                self._count += 1
            if self._pace_s:
                self._stop.wait(self._pace_s)

    def read(self) -> Frame | None:
        with self._lock:
            if self._failure is not None:
                raise InputError(f"camera {self.source} stopped delivering frames ({self._failure})")
            return self._frame

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)


class WebcamCamera:
    """An OpenCV ``VideoCapture`` source: a webcam index (laptop camera = 0) or a video file path."""

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480, fps: float = 30.0,
                 clock: Clock | None = None) -> None:
        import cv2

        is_file = isinstance(device, str) and os.path.isfile(device)
        capture = cv2.VideoCapture(device)
        if not capture.isOpened():
            capture.release()
            if isinstance(device, str) and not is_file and not device.startswith("/dev/"):
                raise InputError(f"cannot open camera {device!r}: no such file or device")
            raise InputError(
                f"cannot open {'video file' if is_file else 'camera'} {device!r}: "
                + ("OpenCV cannot decode it; convert it to .mp4 or .avi" if is_file else
                   "no camera there. Plug in a webcam, pick another index (0, 1, ...), check that no other program "
                   "uses it, and on Linux that you are in the 'video' group")
            )
        pace_s = None
        if is_file:
            file_fps = capture.get(cv2.CAP_PROP_FPS)
            pace_s = 1.0 / file_fps if file_fps and file_fps > 0 else 1.0 / fps
        else:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            capture.set(cv2.CAP_PROP_FPS, fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # where supported: fewer queued frames, less lag
        self._capture = capture
        self._closed = False
        self._grabber = _LatestFrameGrabber(self._grab, f"webcam:{device}", clock or MonotonicClock(), pace_s)

    def _grab(self) -> np.ndarray | None:
        ok, image = self._capture.read()
        return image if ok else None

    def read(self) -> Frame | None:
        return self._grabber.read()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._grabber.close()
        self._capture.release()


class PiCamera:
    """The Raspberry Pi camera through picamera2 (Raspberry Pi OS only).

    picamera2's ``"RGB888"`` format names the pixel as libcamera/DRM do, from the most significant byte down, so in
    memory each pixel is ``[B, G, R]``: exactly OpenCV's BGR, with no conversion. ``swap_red_blue`` is for sensors
    whose driver gets this backwards (blue faces on screen: turn it on).
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, camera_num: int = 0,
                 rotate_180: bool = False, swap_red_blue: bool = False, clock: Clock | None = None) -> None:
        Picamera2 = _import_picamera2()
        try:
            camera = Picamera2(camera_num)
        except Exception as exc:  # IndexError when no camera, RuntimeError when busy
            raise InputError(f"no Pi camera {camera_num} ({type(exc).__name__}: {exc}): check the ribbon cable "
                             "(contacts facing the right way), run `rpicam-hello --list-cameras`, and close other "
                             "programs using the camera") from None
        try:
            options: dict = {}
            if rotate_180:
                from libcamera import Transform

                options["transform"] = Transform(hflip=1, vflip=1)
            config = camera.create_video_configuration(main={"format": "RGB888", "size": (width, height)},
                                                       controls={"FrameRate": float(fps)}, **options)
            camera.configure(config)
            camera.start()
        except Exception as exc:
            camera.close()
            raise InputError(f"cannot start the Pi camera at {width}x{height} {fps:g} fps: {exc}") from None
        self._camera = camera
        self._swap = swap_red_blue
        self._closed = False
        self._grabber = _LatestFrameGrabber(self._grab, f"picamera:{camera_num}", clock or MonotonicClock())

    def _grab(self) -> np.ndarray:
        image = self._camera.capture_array("main")  # blocks until the next frame
        return np.ascontiguousarray(image[:, :, ::-1]) if self._swap else image

    def read(self) -> Frame | None:
        return self._grabber.read()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # capture_array() returns at the next frame (tens of ms), then the thread sees the stop flag. Only a dead
        # camera keeps it blocked: then cancel its pending capture so stop() and close() can proceed.
        self._grabber.close(timeout_s=1.0)
        if self._grabber.alive:
            cancel = getattr(self._camera, "cancel_all_and_flush", None)
            if cancel is not None:
                cancel()
        try:
            self._camera.stop()
        finally:
            self._camera.close()


def _import_picamera2() -> type:
    try:
        from picamera2 import Picamera2
    except ImportError as exc:  # includes "No module named 'libcamera'" from a pip-installed picamera2
        raise InputError(PICAMERA2_MISSING.format(reason=exc)) from None
    except ValueError as exc:  # "numpy.dtype size changed, may indicate binary incompatibility"
        raise InputError(SIMPLEJPEG_NUMPY_MISMATCH.format(numpy=np.__version__, reason=exc)) from None
    return Picamera2


def picamera2_installed() -> bool:
    """Whether picamera2 is there to try (found, not imported: if it is broken, PiCamera says why)."""
    try:
        return importlib.util.find_spec("picamera2") is not None
    except (ImportError, ValueError):
        return False


def auto_camera(width: int = 640, height: int = 480, fps: float = 30.0, clock: Clock | None = None) -> Camera:
    """The ``auto`` camera source: the Pi camera when picamera2 is installed, else webcam 0."""
    if picamera2_installed():
        return PiCamera(width=width, height=height, fps=fps, clock=clock)
    return WebcamCamera(0, width=width, height=height, fps=fps, clock=clock)
