"""The support console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by `.ci/run`) driven by Selenium, against `ledger run api` and
`ledger run` on the real PostgreSQL and Kafka.

A support user signs in, finds a learner and reads why she has no certificate yet (in the very
words of `ledger learner why`); an anonymous visitor checks a valid and a revoked certificate;
an operator retries a rejected message and sees the intake accept it. Every page is also checked
for labelled inputs, a skip link reached first by the keyboard, text contrast, and a phone's
width. A screenshot of each page is kept in `test-artifacts/console/` (or `$LEDGER_ARTIFACTS`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from ledger.broker import OutRecord
from ledger.entrypoints.staff.roles import Role
from ledger.settings import Settings

from .helpers import (
    REPO,
    Publisher,
    caught_up,
    ledger_cli,
    running_api,
    running_pipeline,
    specialization_stored,
    staff_token,
    wait_for,
)
from .scenario import PUBLISHED, at, graded

pytestmark = pytest.mark.integration


SPEC = "console-ds"
LATE = "console-late"
COURSES = ["cds-1", "cds-2", "cds-3"]
CAPSTONE = "cds-capstone"
CATALOG = {
    **PUBLISHED,
    "specialization_id": SPEC,
    "title": "Console Data Science",
    "partners": ["Johns Hopkins University", "Imperial College London"],
    "courses": COURSES,
    "capstone_course_id": CAPSTONE,
}
ARTIFACTS = Path(os.environ.get("LEDGER_ARTIFACTS", REPO / "test-artifacts")) / "console"


def _browser_binaries() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "headless Chromium is missing: apt-get install chromium chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, chromedriver = _browser_binaries()
    options = Options()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def learner_completes(p: Publisher, learner: str) -> list[OutRecord]:
    """Enrolled, verified, every course and the capstone passed and paid."""
    records = [
        p.record(
            "ledger.learner.enrolled.v1",
            learner,
            {"learner_id": learner, "specialization_id": SPEC, "intent": "certificate"},
            at(1),
        ),
        p.record(
            "ledger.identity.verified.v1",
            learner,
            {"learner_id": learner, "method": "government_id"},
            at(2),
        ),
    ]
    for n, course in enumerate([*COURSES, CAPSTONE], start=3):
        records += [
            p.record("ledger.course.graded.v1", learner, graded(learner, course), at(n)),
            p.record(
                "ledger.payment.captured.v1",
                learner,
                {
                    "learner_id": learner,
                    "payment_id": f"{learner}-{course}",
                    "course_id": course,
                    "amount": "49.00",
                    "currency": "USD",
                },
                at(n),
            ),
        ]
    return records


def scenario_records(p: Publisher) -> list[OutRecord]:
    """marie completes (a valid certificate); rosalind completes, then a chargeback revokes her
    certificates (P5, K5); alan has passed one course and paid nothing; and a revision of a
    specialization not yet published, which the ledger rejects."""
    alan = [
        p.record(
            "ledger.learner.enrolled.v1",
            "alan",
            {"learner_id": "alan", "specialization_id": SPEC, "intent": "certificate"},
            at(1),
        ),
        p.record("ledger.course.graded.v1", "alan", graded("alan", "cds-1"), at(3)),
    ]
    chargeback = p.record(
        "ledger.payment.charged_back.v1",
        "rosalind",
        {"learner_id": "rosalind", "payment_id": "rosalind-cds-1"},
        at(20),
    )
    early_revision = p.record(
        "ledger.specialization.revised.v1",
        LATE,
        {
            "specialization_id": LATE,
            "courses": ["l-1", "l-2", "l-3", "l-4"],
            "capstone_course_id": "l-cap",
        },
        at(5),
    )
    return [
        *learner_completes(p, "marie"),
        *learner_completes(p, "rosalind"),
        chargeback,
        *alan,
        early_revision,
    ]


@pytest.fixture(scope="module")
def console(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pipeline and the API running, the scenario through them; the API's base URL."""
    logs = tmp_path_factory.mktemp("console")
    with (
        running_pipeline(settings, logs / "run.log") as pipeline,
        running_api(settings, logs / "api.log") as base,
    ):
        publisher = Publisher(settings)
        try:
            publisher.send(
                publisher.record("ledger.specialization.published.v1", SPEC, CATALOG, at(0))
            )
            wait_for(lambda: specialization_stored(settings, SPEC), 60, f"the catalog ({pipeline})")
            publisher.send(*scenario_records(publisher))
        finally:
            publisher.close()
        wait_for(lambda: caught_up(settings), 120, f"the pipeline to catch up ({pipeline})")
        yield base


def shot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def page_checks(browser: WebDriver, name: str) -> None:
    """What every page must have: a title and one h1, every visible input labelled, the skip
    link first to the keyboard, text that contrasts, nothing wider than a phone; a
    screenshot at desktop and phone width."""
    assert browser.title.endswith("Enrollment ledger"), browser.title
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden])')]"
        ".filter(i => !i.labels.length && !i.getAttribute('aria-label')).map(i => i.name)"
    )
    assert unlabelled == [], unlabelled
    low = browser.execute_script(CONTRAST_JS)
    assert low == [], low
    shot(browser, name)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    first = browser.switch_to.active_element
    assert first.get_attribute("class") == "skip", first.get_attribute("outerHTML")
    browser.execute_script("document.activeElement.blur()")
    browser.set_window_size(390, 844)
    try:
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 1, f"{name}: {overflow}px wider than a phone"
        shot(browser, f"{name}-phone")
    finally:
        browser.set_window_size(1280, 900)


#: The lowest contrast ratio (WCAG 2) of each visible text element against the background it
#: sits on; those under 4.5:1 are returned.
CONTRAST_JS = """
function lum(c) {
  const [r, g, b] = c.match(/[0-9.]+/g).slice(0, 3).map(Number).map(v => {
    v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(el) {
  for (; el; el = el.parentElement) {
    const bg = getComputedStyle(el).backgroundColor;
    if (bg && !bg.startsWith('rgba(0, 0, 0, 0)') && bg !== 'transparent') return bg;
  }
  return 'rgb(255, 255, 255)';
}
const low = [];
for (const el of document.querySelectorAll('body *')) {
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  if (!el.offsetParent && el.tagName !== 'BODY') continue;
  const a = lum(getComputedStyle(el).color), b = lum(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) low.push(el.tagName + ' ' + el.className + ': ' + ratio.toFixed(2));
}
return low;
"""


def heading(browser: WebDriver, expected: Callable[[str], bool]) -> str:
    """The page's h1 once it is what `expected` says: a form sent with Enter or a click may
    still be loading the next page when the call returns."""
    found: list[str] = []

    def arrived(b: WebDriver) -> bool:
        found[:] = [e.text for e in b.find_elements(By.TAG_NAME, "h1")]
        return len(found) == 1 and expected(found[0])

    # The old page's h1 may be found and then replaced before its text is read (a stale
    # element): the page is changing, which is what this waits for, so look again.
    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        arrived, f"the next page (h1 so far: {found})"
    )
    return found[0]


def sign_in(browser: WebDriver, base: str, token: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{base}/console")
    assert "Sign in" in browser.find_element(By.TAG_NAME, "h1").text
    page_checks(browser, "01-sign-in")
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)
    heading(browser, lambda h1: h1 != "Sign in")


def test_support_finds_a_learner_and_reads_why_he_has_no_certificate(
    settings: Settings, console: str, browser: WebDriver
) -> None:
    sign_in(browser, console, staff_token(settings, "sue@support", Role.SUPPORT))
    assert heading(browser, bool) == "Find a learner"
    page_checks(browser, "02-find-a-learner")
    search = browser.find_element(By.ID, "learner_id")
    search.send_keys("alan")
    search.send_keys(Keys.ENTER)  # the keyboard alone
    heading(browser, lambda h1: h1 == "Learner alan")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "Never verified." in text
    assert "Console Data Science" in text and "version 1" in text
    assert "Johns Hopkins University" in text
    rows = browser.find_elements(By.CSS_SELECTOR, "article.enrollment tbody tr")
    assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == [
        *COURSES,
        f"{CAPSTONE} (capstone)",
    ]
    assert rows[0].find_elements(By.TAG_NAME, "td")[0].text.startswith("yes, 0.9")
    assert "Payments" not in text  # support holds no finance role
    page_checks(browser, "03-learner")
    browser.find_element(By.LINK_TEXT, "Why no certificate yet?").click()
    heading(browser, lambda h1: h1.startswith("alan in"))
    cli = json.loads(ledger_cli(settings, "learner", "why", "alan", SPEC, "--json").stdout)
    verdict = browser.find_element(By.CSS_SELECTOR, ".verdict").text
    assert verdict.endswith(f"not eligible yet ({cli['percent_complete']:.0f}% complete)")
    items = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "ul.missing li")]
    assert items == [m["message"] for m in cli["missing"]]
    assert "course cds-1 passed but not paid" in items
    page_checks(browser, "04-why")


def certificate_codes(settings: Settings, learner: str) -> dict[str, Any]:
    progress = json.loads(ledger_cli(settings, "learner", "show", learner, "--json").stdout)
    return progress["enrollments"][0]["certificate"]


def test_anyone_checks_a_valid_and_a_revoked_certificate(
    settings: Settings, console: str, browser: WebDriver
) -> None:
    browser.delete_all_cookies()
    valid = certificate_codes(settings, "marie")
    browser.get(f"{console}/certificates/{valid['verification_code']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "This certificate is valid"
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "Console Data Science" in text and "learner marie" in text
    assert "Johns Hopkins University, Imperial College London" in text
    assert f"version 1: {', '.join([*COURSES, CAPSTONE])}" in text
    assert browser.find_elements(By.CSS_SELECTOR, "header nav") == []  # no staff navigation
    page_checks(browser, "05-certificate-valid")
    revoked = certificate_codes(settings, "rosalind")
    assert revoked["revoked_at"] is not None
    browser.get(f"{console}/certificates/{revoked['verification_code']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "This certificate was revoked"
    verdict = browser.find_element(By.CSS_SELECTOR, ".verdict").text
    assert "a course certificate it rested on was revoked" in verdict
    page_checks(browser, "06-certificate-revoked")
    browser.get(f"{console}/certificates/NoSuchCode00000000000")
    assert browser.find_element(By.TAG_NAME, "h1").text == "No such certificate"


def test_an_operator_retries_a_rejection_and_sees_it_accepted(
    settings: Settings, console: str, browser: WebDriver
) -> None:
    publisher = Publisher(settings)
    try:  # the cause of the rejection, fixed: the specialization is published at last
        late = {**CATALOG, "specialization_id": LATE, "title": "Late Arrival"}
        publisher.send(publisher.record("ledger.specialization.published.v1", LATE, late, at(6)))
        wait_for(lambda: specialization_stored(settings, LATE), 60, "the late catalog")
    finally:
        publisher.close()
    sign_in(browser, console, staff_token(settings, "otto@ops", Role.OPERATOR))
    browser.find_element(By.LINK_TEXT, "Rejected messages").click()
    heading(browser, lambda h1: h1 == "Rejected messages")
    page_checks(browser, "07-rejections")
    row = next(
        r
        for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
        if LATE in r.text or "never published" in r.text
    )
    row.find_element(By.TAG_NAME, "a").click()
    heading(browser, lambda h1: h1.startswith("Rejected message "))
    assert "not accepted" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    page_checks(browser, "08-rejection")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Retry this message").click()
    heading(browser, lambda h1: h1.endswith("?"))
    page_checks(browser, "09-retry-confirmation")
    browser.find_element(By.XPATH, "//button[text()='Yes, re-submit it']").click()
    heading(browser, lambda h1: not h1.endswith("?"))
    assert "Re-submitted to the intake" in browser.find_element(By.CSS_SELECTOR, ".notice").text

    def accepted() -> bool:
        browser.refresh()
        return "accepted by the intake" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text

    wait_for(accepted, 60, "the retried message to be accepted")
    assert "Retried" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    page_checks(browser, "10-rejection-accepted")
    browser.find_element(By.LINK_TEXT, "Read models").click()
    heading(browser, lambda h1: h1 == "Read models")
    page_checks(browser, "11-read-models")


def test_the_api_docs_render_with_no_internet(console: str, browser: WebDriver) -> None:
    """Swagger UI's script and stylesheet come from the app itself: this browser reaches
    nothing but the API (the machine has no internet), and the docs still render."""
    browser.delete_all_cookies()
    browser.get(f"{console}/docs")
    title = WebDriverWait(browser, 30).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")
    )
    assert "Enrollment ledger" in title[0].text
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    paths = {o.get_attribute("data-path") or o.text for o in operations}
    assert "/v1/events" in paths and "/v1/learners/{learner_id}" in paths
    assert browser.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # bearer tokens, documented
    shot(browser, "12-api-docs")
