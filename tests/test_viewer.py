"""The web viewer: a self-contained page, `kmtalk view`, --serve, and the page in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from kmtalk_cli.commands.view import view
from kmtalk_cli.export.gltf import write_glb
from kmtalk_cli.face.rig import INDEX, PARAMETERS, build_rig
from kmtalk_cli.viewer import PageServer, build_page, start_server, viewer_page

FPS = 30.0
FRAMES = 31  # one second: the jaw is shut at 0 s and wide open at 0.5 s
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

# `view` alone as an app, so these tests do not depend on how cli.py registers it.
app = typer.Typer()
app.command()(view)
runner = CliRunner()



@pytest.fixture(scope="module")
def talk(tmp_path_factory, head):
    """A rig .glb whose jaw opens fully at 0.5 s, with 1 s of speech beside it (named in its extras)."""
    folder = tmp_path_factory.mktemp("viewer")
    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(16_000) / 16_000)
    sf.write(folder / "speech.wav", tone.astype(np.float32), 16_000)
    rig = build_rig(head)
    weights = np.zeros((FRAMES, len(PARAMETERS)))
    weights[:, INDEX["jawOpen"]] = np.sin(np.pi * np.arange(FRAMES) / (FRAMES - 1))
    deltas = rig.pose(np.eye(len(PARAMETERS))) - rig.rest
    return write_glb(folder / "talk.glb", head, morph_names=PARAMETERS, morph_deltas=deltas, weights=weights, fps=FPS,
                     audio_path=folder / "speech.wav")


def test_page_inlines_everything_and_references_nothing(talk):
    page = viewer_page(talk)
    assert page.audio == talk.parent / "speech.wav"  # found through the .glb's extras
    html = page.html
    assert "@@" not in html.split("<script>", 1)[0]  # every placeholder filled
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=\"(?!data:)", html)  # no external resource
    glb = re.search(r'id="kmtalk-glb">([^<]*)<', html).group(1)
    assert base64.b64decode(glb) == talk.read_bytes()
    assert 'src="data:audio/wav;base64,' in html and "KMTALK_THREE" in html and "three.js 0.187.0" in html
    assert 1.0e6 < page.size < 2.5e6


def test_page_config_cannot_break_out_of_its_script():
    html = build_page(b"glTF", title="<b>&", info={"source": "</script><script>alert(1)</script>"})
    assert "<title>&lt;b&gt;&amp; · kmtalk</title>" in html
    assert html.count("</script>") == 4  # config, glb, three.js, viewer: nothing injected


def test_view_writes_the_page_once_and_reports_bad_files(talk, tmp_path):
    result = runner.invoke(app, [str(talk)])
    assert result.exit_code == 0, result.stderr
    assert "speech from" in result.stderr and talk.with_suffix(".html").is_file()
    again = runner.invoke(app, [str(talk)])
    assert again.exit_code == 1 and "--force" in again.stderr
    assert runner.invoke(app, [str(talk), "--force", "--audio", str(talk.parent / "speech.wav")]).exit_code == 0
    missing = runner.invoke(app, [str(tmp_path / "nope.glb")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    (tmp_path / "fake.glb").write_bytes(b"not a model at all")
    fake = runner.invoke(app, [str(tmp_path / "fake.glb")])
    assert fake.exit_code == 1 and "not a glTF binary" in fake.stderr
    moved = tmp_path / "moved.glb"
    shutil.copyfile(talk, moved)
    silent = runner.invoke(app, [str(moved), "-o", str(tmp_path / "moved.html")])
    assert silent.exit_code == 0 and "will be silent" in silent.stderr and "no audio" in silent.stderr


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_server_serves_only_the_page_and_stops():
    server = start_server(b"<html>kmtalk</html>", name="talk.html", port=0)
    try:
        assert fetch(server.url) == (200, b"<html>kmtalk</html>")
        assert fetch(server.url.rsplit("/", 1)[0] + "/")[0] == 200
        assert fetch(server.url.rsplit("/", 1)[0] + "/../etc/passwd")[0] == 404
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)


def test_view_serve_prints_the_url_serves_and_stops_on_ctrl_c(talk, monkeypatch):
    fetched = {}

    def visit_then_interrupt(self: PageServer) -> None:
        fetched["status"], fetched["body"] = fetch(self.url)
        raise KeyboardInterrupt

    monkeypatch.setattr(PageServer, "wait", visit_then_interrupt)
    result = runner.invoke(app, [str(talk), "--serve", "--port", "0"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().startswith("http://127.0.0.1:") and "Stopped serving" in result.stderr
    assert fetched["status"] == 200 and b"kmtalkViewer" in fetched["body"]


# ---- headless Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,760",
                     "--hide-scrollbars", "--mute-audio", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def open_page(driver, url: str) -> None:
    """Load ``url`` and wait for the viewer's hook; fail with its message or the console's errors."""
    driver.get_log("browser")  # drop entries from earlier pages
    driver.get(url)
    deadline = time.monotonic() + 15
    state = None
    while time.monotonic() < deadline:
        state = driver.execute_script("return window.kmtalkViewer ? {ready: kmtalkViewer.ready, error: kmtalkViewer.error || ''} : null")
        if state:
            break
        time.sleep(0.05)
    assert state and state["ready"], state or driver.get_log("browser")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver) -> np.ndarray:
    """The viewport as an (H, W, 3) uint8 array (PNG decoded by the ffmpeg kmtalk already ships)."""
    png = driver.get_screenshot_as_png()
    width, height = struct.unpack(">II", png[16:24])
    raw = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        input=png, capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def box(driver, head, region: str, margin: int = 6) -> tuple[slice, slice]:
    """Screen rows/columns around a template region, from the viewer's own projection."""
    indices = [int(i) for i in head.region(region)]
    points = np.array(driver.execute_script("return arguments[0].map((i) => kmtalkViewer.project(i))", indices))
    (x0, y0), (x1, y1) = points.min(axis=0).astype(int) - margin, points.max(axis=0).astype(int) + margin
    return slice(max(y0, 0), y1), slice(max(x0, 0), x1)


def test_page_draws_the_head_and_moves_the_mouth_in_chromium(browser, talk, head, tmp_path):
    page = tmp_path / "talk.html"
    page.write_text(viewer_page(talk).html, encoding="utf-8")
    open_page(browser, page.as_uri())
    assert console_errors(browser) == []
    assert browser.execute_script("return kmtalkViewer.duration") == pytest.approx(1.0, abs=0.01)

    browser.execute_script("kmtalkViewer.seek(0)")
    shut = screenshot(browser)
    closed_weights = browser.execute_script("return kmtalkViewer.weights()")
    browser.execute_script("kmtalkViewer.seek(0.5)")
    wide = screenshot(browser)
    open_weights = browser.execute_script("return kmtalkViewer.weights()")
    assert closed_weights[INDEX["jawOpen"]] == pytest.approx(0.0, abs=1e-6)
    assert open_weights[INDEX["jawOpen"]] == pytest.approx(1.0, abs=1e-3)

    rect = browser.execute_script("const r = document.getElementById('view').getBoundingClientRect(); "
                                  "return [r.top, r.bottom, r.left, r.right]")
    view_area = shut[int(rect[0]):int(rect[1]), int(rect[2]):int(rect[3])].astype(int)
    background = view_area[2, 2]
    drawn = np.abs(view_area - background).max(axis=-1) > 12
    assert drawn.mean() > 0.08, f"only {drawn.mean():.1%} of the view differs from the background"

    # The head's parts play too: the jaw node (lower teeth, tongue) turns as the mouth opens.
    browser.execute_script("kmtalkViewer.seek(0)")
    jaw_shut = browser.execute_script("return kmtalkViewer.node('jaw')")
    browser.execute_script("kmtalkViewer.seek(0.5)")
    jaw_open = browser.execute_script("return kmtalkViewer.node('jaw')")
    assert abs(jaw_shut["rotation"][0]) < 0.01 and jaw_open["rotation"][0] > 0.05
    for name in ("teeth_upper", "teeth_lower", "tongue", "mouth", "eye_left", "eye_right", "scalp"):
        assert browser.execute_script(f"return kmtalkViewer.node('{name}')") is not None, name

    changed = np.abs(wide.astype(int) - shut.astype(int)).max(axis=-1) > 24
    mouth, brow = box(browser, head, "lips"), box(browser, head, "forehead")
    assert changed[mouth].mean() > 0.05, f"only {changed[mouth].mean():.1%} of the mouth area changed"
    assert changed[brow].mean() < 0.01
    assert console_errors(browser) == []


def test_served_page_loads_in_chromium(browser, talk):
    server = start_server(viewer_page(talk).html.encode("utf-8"), name="talk.html", port=0)
    try:
        open_page(browser, server.url)
        assert console_errors(browser) == []
        assert browser.execute_script("return kmtalkViewer.targetNames") == list(PARAMETERS)
    finally:
        server.stop()
