"""Open a Label Studio task in headless Chromium as an annotator would, and save a screenshot.

Run with a Python that has ``playwright`` (its own venv is fine: it needs no callqa code) and a
system Chromium (Debian: ``apt-get install chromium``; Playwright's browser download is not needed):

    python scripts/screenshot_task.py --url http://127.0.0.1:8085 --project 1 --out docs/labelstudio-task.png
"""

from __future__ import annotations

import argparse
import sys

from playwright.sync_api import sync_playwright


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8085")
    ap.add_argument("--email", default="admin@callqa.local")
    ap.add_argument("--password", default="callqa-admin")
    ap.add_argument("--project", type=int, required=True)
    ap.add_argument("--task", type=int, default=None, help="task id (default: the project's label stream)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1300})
        page.goto(f"{args.url}/user/login/")
        page.fill("input[name=email]", args.email)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        project = f"/projects/{args.project}"
        target = f"{project}/data?task={args.task}" if args.task else f"{project}/labeling"
        page.goto(args.url + target)
        page.wait_for_selector("text=current_supplier", timeout=60_000)
        page.wait_for_timeout(4000)  # waveform and regions render after the data
        page.screenshot(path=args.out, full_page=True)
        errors = page.locator("text=/error|Error/").count()
        browser.close()
    print(f"saved {args.out}; error texts on the page: {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
