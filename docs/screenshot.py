"""Screenshot of a surprisal view page in headless Chromium, with one word's tooltip open.

    python docs/screenshot.py story.html story.png --hover 9

Needs Chromium, chromedriver and selenium (`apt-get install -y chromium chromium-driver`,
`pip install selenium`). The PNG is reduced to a 64-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the HTML page (render(..., page=True))")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--hover", type=int, default=9, help="index of the token to hover")
    parser.add_argument("--width", type=int, default=1000, help="window width, px")
    parser.add_argument("--height", type=int, default=640, help="window height, px")
    parser.add_argument("--mode", choices=["rank", "surprisal"], default="rank")
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={args.width},{args.height}")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(args.page.resolve().as_uri())
        driver.find_element(By.CSS_SELECTOR, f'.hs-switch button[data-mode="{args.mode}"]').click()
        token = driver.find_elements(By.CSS_SELECTOR, ".hs-token")[args.hover]
        ActionChains(driver).move_to_element(token).perform()
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.output, optimize=True)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
