"""The console in headless Chromium: log in, tokens, a device, an agent's interrupt settings,
enrollment by upload, the sample players, the identify test page by upload and by
microphone, and a device's household page."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "console-pw"


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def acme(db):
    from tenancy.services import tenant_create

    tenant, _ = tenant_create(name="acme")
    return tenant


def test_console_tour(browser, superuser, acme, shared_zh):
    from devices.models import Device
    from interrupts.selectors import agent_uncertain_interrupt_get
    from roles.selectors import role_get_default
    from tenancy.models import ApiToken

    browser.log_in("root", PASSWORD)

    # A token, shown once; afterwards the tenant page lists only its prefix.
    browser.get(f"/admin/tenancy/tenant/{acme.pk}/change/")
    browser.find("#create-token-form input[name=label]").send_keys("firmware")
    browser.submit("#create-token")
    plaintext = browser.find(".console-token").text
    browser.screenshot("token-created")
    token = ApiToken.objects.get(tenant=acme, label="firmware")
    assert plaintext.startswith(f"vp_{token.prefix}_")
    browser.submit("#tokens-continue")
    page = browser.driver.page_source
    assert f"vp_{token.prefix}_" in page
    assert plaintext not in page and token.digest not in page
    browser.screenshot("tenant-tokens")

    # A device.
    browser.get("/admin/devices/device/add/")
    browser.select("#id_tenant", "acme")
    browser.find("#id_device_id").send_keys("kitchen-01")
    browser.find("#id_device_name").send_keys("Kitchen speaker")
    browser.submit("input[name=_save]")
    assert "was added successfully" in browser.find(".messagelist").text
    device = Device.objects.get(tenant=acme, device_id="kitchen-01")

    # An agent's settings: every role's checkbox and the uncertain speaker's.
    browser.get("/admin/interrupts/roleinterrupt/")
    browser.find(".object-tools a[href$='/agent/']").click()
    browser.select("#id_tenant", "acme")
    browser.find("#id_agent_id").send_keys("robot")
    browser.submit("#agent-form input[type=submit]")
    assert browser.find(f"#interrupt-{role_get_default(acme).role_id}").is_selected()
    assert not browser.find("#id_uncertain_interrupt").is_selected()
    browser.find("label[for=id_uncertain_interrupt]").click()
    browser.submit("#agent-roles-form input[type=submit]")
    assert "Saved the settings of agent robot." in browser.find(".messagelist").text
    assert browser.find("#id_uncertain_interrupt").is_selected()
    assert agent_uncertain_interrupt_get(acme, agent_id="robot") is True
    browser.screenshot("agent-settings")

    # Two voices enrolled by upload, one with a second sample.
    for speaker in ("fangjun", "leijun"):
        browser.get("/admin/voiceprint/voice/add/")
        browser.select("#id_tenant", "acme")
        browser.select("#id_device", "acme · Kitchen speaker (kitchen-01)")
        browser.find("#id_name").send_keys(speaker)
        browser.find("#id_audio").send_keys(str(shared_zh / "enroll" / f"{speaker}-sr-1.wav"))
        browser.submit("#enroll-form-submit")
        assert f"Enrolled voice “{speaker}”" in browser.find(".messagelist").text
    browser.get("/admin/voiceprint/voice/?q=fangjun")
    browser.find("#result_list tbody a").click()
    browser.find("#add-sample").click()
    browser.find("#id_audio").send_keys(str(shared_zh / "enroll" / "fangjun-sr-2.wav"))
    browser.screenshot("add-sample")
    browser.submit("#sample-form-submit")

    # The sample players load their audio.
    players = browser.find_all("audio.console-audio")
    assert len(players) == 2
    browser.wait.until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('audio.console-audio')]"
            ".every(a => a.readyState >= 1 && a.duration > 1)"
        )
    )
    fetched = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.querySelector('audio.console-audio').src)"
        ".then(r => done([r.status, r.headers.get('Content-Type')]));"
    )
    assert fetched == [200, "audio/wav"]
    browser.screenshot("voice-samples")

    # The identify test page recognises a test recording of the same speaker.
    browser.get("/admin/")
    browser.find("#identify-link").click()
    browser.select("#id_device", "acme · Kitchen speaker (kitchen-01)")
    browser.find("#id_audio").send_keys(str(shared_zh / "test" / "fangjun-test-sr-1.wav"))
    browser.submit("#identify-submit")
    assert browser.find("#identify-verdict").text.startswith("Matched")
    assert browser.find("#matched-voice").text == "fangjun"
    rows = browser.find_all("#identify-candidates tbody tr")
    assert len(rows) == 2 and "fangjun" in rows[0].text
    browser.screenshot("identify-result")

    device.refresh_from_db()
    assert (device.identify_count, device.matched_count) == (1, 1)

    # The device's household: its two voices side by side, and that identify call.
    browser.get(f"/admin/devices/device/{device.pk}/change/")
    browser.find("#device-household").click()
    assert len(browser.find_all("#heatmap td[data-score]")) == 2
    assert browser.find("#outcome-match").text == "1"
    assert len(browser.find_all("#outcome-chart rect.match")) == 1
    browser.screenshot("device-household")

    browser.get("/admin/devices/device/")
    assert "kitchen-01" in browser.find("#result_list").text
    browser.screenshot("device-list")
    browser.get("/admin/")
    browser.screenshot("console-index")


def test_microphone_recording_is_submitted_as_wav(browser, superuser, acme, shared_zh):
    from devices.services import device_create
    from voiceprint.services import voice_create

    device = device_create(acme, device_id="hall-01", device_name="Hall speaker")
    voice_create(
        acme,
        devices=[device],
        name="leijun",
        audio=(shared_zh / "enroll" / "leijun-sr-1.wav").read_bytes(),
    )
    browser.log_in("root", PASSWORD)
    browser.get(f"/admin/identify/?device={device.pk}")
    browser.find("[data-record]").click()
    browser.wait.until(
        lambda d: d.execute_script(
            "return document.querySelector('[data-recorder]').dataset.state === 'recording'"
        )
    )
    browser.driver.execute_script("return new Promise(r => setTimeout(r, 2500))")
    browser.find("[data-stop]").click()
    browser.wait.until(
        lambda d: d.execute_script(
            "return document.querySelector('[data-recorder]').dataset.state === 'recorded'"
        )
    )
    # The file input now holds a 16 kHz mono 16-bit WAV made in the page.
    header = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const file = document.getElementById('id_audio').files[0];"
        "file.arrayBuffer().then(b => { const v = new DataView(b);"
        "  done([file.name, file.type, String.fromCharCode(...new Uint8Array(b, 0, 4)),"
        "        v.getUint16(22, true), v.getUint32(24, true), v.getUint16(34, true),"
        "        b.byteLength, new Int16Array(b, 44).reduce((m, x) => Math.max(m, Math.abs(x)), 0)"
        "  ]); });"
    )
    name, content_type, riff, channels, rate, bits, size, peak = header
    assert (name, content_type, riff, channels, rate, bits) == (
        "microphone.wav",
        "audio/wav",
        "RIFF",
        1,
        16000,
        16,
    )
    assert size > 44 + 2 * 16000  # more than a second of samples
    assert peak > 1000  # the fake microphone's beep, not silence
    browser.submit("#identify-submit")
    browser.screenshot("identify-microphone")
    # The fake microphone plays a beep: any verdict is fine, or a clear message when it is
    # not enough speech, but never an error page and never undecodable audio.
    result = browser.find("#identify-result").text
    assert "Server Error" not in browser.driver.title
    if browser.find_all("#identify-error"):
        assert "(code 40003)" in result, result
    else:
        assert "microphone.wav" in result
        assert browser.find("#identify-verdict").text


#: Seconds from Start until the live panel must name the speaker.
LIVE_SECONDS = 15


#: Makes the page's browser one without AudioWorklet, so that live.js takes its fallback.
NO_AUDIO_WORKLET = (
    "Object.defineProperty(BaseAudioContext.prototype, 'audioWorklet', {get: () => undefined})"
)


def live_state(driver) -> str:
    return driver.execute_script("return document.getElementById('live').dataset.state")


@pytest.mark.parametrize("capture", ["worklet", "script-processor"])
def test_live_microphone_names_the_speaker(speech_browser, superuser, acme, shared_zh, capture):
    """The identify page's live panel, over WS /v1/voiceprint/stream: the speech browser's
    microphone plays a test recording of fangjun (conftest.SPEECH_RECORDING), and the panel
    names him while the recording plays; Stop ends the stream normally. The audio is framed
    by the AudioWorklet, or by the ScriptProcessor fallback."""
    from selenium.webdriver.support.ui import WebDriverWait

    from devices.services import device_create
    from voiceprint.services import voice_create

    browser = speech_browser
    device = device_create(acme, device_id="hall-01", device_name="Hall speaker")
    for speaker in ("fangjun", "leijun"):
        audio = (shared_zh / "enroll" / f"{speaker}-sr-1.wav").read_bytes()
        voice_create(acme, devices=[device], name=speaker, audio=audio)
    browser.log_in("root", PASSWORD)
    browser.get(f"/admin/identify/?device={device.pk}")
    if capture == "script-processor":
        browser.driver.execute_script(NO_AUDIO_WORKLET)
    browser.find("#live-agent").send_keys("robot")
    browser.find("#live-start").click()
    WebDriverWait(browser.driver, LIVE_SECONDS).until(
        lambda d: (
            browser.find("#live-name").text == "fangjun" or live_state(d) in ("error", "closed")
        ),
    )
    assert browser.find("#live-name").text == "fangjun", browser.find("#live-status").text
    assert browser.find("#live").get_attribute("data-capture") == capture
    assert browser.find("#live-decision").text == "match"
    assert browser.find("#live-interrupt").text in ("interrupt: yes", "interrupt: no")
    assert browser.find("#live-score").text.startswith("score 0.")
    log = browser.find("#live-log").text
    assert "speech starts" in log and "fangjun, match" in log, log
    assert "Listening on device hall-01 for agent robot" in browser.find("#live-status").text
    if capture == "worklet":
        browser.screenshot("identify-live")

    browser.find("#live-stop").click()
    browser.wait.until(lambda d: live_state(d) in ("closed", "error"))
    assert browser.find("#live-status").text.startswith("Closed (code 1000)")
    assert "end," in browser.find("#live-log").text
    # Each utterance's final is an identify call of the device (partials count nothing).
    device.refresh_from_db()
    assert device.identify_count >= 1


def test_live_microphone_says_why_a_stream_is_refused(speech_browser, superuser, acme, settings):
    """A stream the server refuses (here: the tenant's stream limit, 0) shows its error event
    and close code in words, and the panel can start again."""
    from devices.services import device_create

    settings.VOICEPRINT_STREAM_MAX_PER_TENANT = 0
    device = device_create(acme, device_id="hall-01", device_name="Hall speaker")
    speech_browser.log_in("root", PASSWORD)
    speech_browser.get(f"/admin/identify/?device={device.pk}")
    speech_browser.find("#live-start").click()
    speech_browser.wait.until(lambda d: live_state(d) in ("error", "closed"))
    status = speech_browser.find("#live-status").text
    assert live_state(speech_browser.driver) == "error", status
    assert status.startswith("Error 42900: the tenant has 0 streams open"), status
    assert "Closed (code 4429): too many streams are open for this tenant" in status
    assert speech_browser.find("#live-start").is_enabled()
    assert not speech_browser.find("#live-stop").is_enabled()
