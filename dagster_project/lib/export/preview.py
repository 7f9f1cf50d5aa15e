"""An export's dataset card as an HTML page (and, with a headless Chromium, a PNG of it).

    python -m dagster_project.lib.export.preview warehouse/exports/<version> --html card.html
    python -m dagster_project.lib.export.preview warehouse/exports/<version> --png docs/dataset-card.png

The page shows the YAML header's main fields above the rendered body, roughly as the Hub lays
out a dataset card. Rendering needs the `markdown` package; the PNG needs `playwright` and a
Chromium binary (`--chromium`, default /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import yaml

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CSS = """
body { font: 15px/1.55 -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", sans-serif; color: #1f2328;
       max-width: 940px; margin: 24px auto; padding: 0 24px; }
h1 { font-size: 28px; border-bottom: 1px solid #d1d9e0; padding-bottom: 6px; }
h2 { font-size: 21px; border-bottom: 1px solid #d1d9e0; padding-bottom: 4px; margin-top: 28px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
th, td { border: 1px solid #d1d9e0; padding: 4px 9px; }
th { background: #f6f8fa; }
code { background: #eff1f3; padding: 1px 4px; border-radius: 4px; font-size: 12.5px; }
pre { background: #f6f8fa; padding: 10px 12px; border-radius: 6px; overflow-x: auto; font-size: 12.5px; }
pre code { background: none; padding: 0; }
blockquote { margin: 12px 0; padding: 8px 14px; border-left: 4px solid #d4a72c; background: #fff8c5; }
img { max-width: 100%; }
em { color: #59636e; }
.meta { border: 1px solid #d1d9e0; border-radius: 8px; padding: 10px 14px; background: #f6f8fa; font-size: 13px; }
.meta div { display: flex; margin: 2px 0; } .meta b { flex: 0 0 128px; color: #59636e; font-weight: 600; }
"""


def card_html(folder: Path) -> str:
    """README.md of an export folder as a standalone HTML page (images resolve next to it)."""
    import markdown

    text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    header, body = {}, text
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        raw, body = text[4:].split("\n---\n", 1)
        header = yaml.safe_load(raw) or {}
    rendered = markdown.markdown(body, extensions=["tables", "fenced_code"])
    return (f'<!doctype html><html><head><meta charset="utf-8"><base href="{Path(folder).resolve().as_uri()}/">'
            f"<style>{CSS}</style></head><body>{_header(header)}{rendered}</body></html>")


def _header(data: dict) -> str:
    if not data:
        return ""
    license = data.get("license", "")
    if data.get("license_name"):
        license += f" ({data['license_name']}, see {data.get('license_link', '')})"
    configs = ", ".join(c["config_name"] + (" (default)" if c.get("default") else "") for c in data.get("configs", []))
    rows = [("license", license), ("size", ", ".join(data.get("size_categories", []))), ("configs", configs),
            ("source datasets", ", ".join(data.get("source_datasets", []))), ("tags", ", ".join(data.get("tags", [])))]
    items = "".join(f"<div><b>{k}</b>{html.escape(str(v))}</div>" for k, v in rows if v)
    return f'<div class="meta">{items}</div>'


def screenshot(page_html: str, out: Path, chromium: str, width: int = 1000) -> None:
    """Render `page_html` in headless Chromium and save the full page as a PNG."""
    from playwright.sync_api import sync_playwright

    tmp = out.with_suffix(".html")
    tmp.write_text(page_html, encoding="utf-8")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            page.goto(tmp.resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render an export's dataset card as HTML or PNG.")
    parser.add_argument("export", type=Path, help="the export version folder (holds README.md)")
    parser.add_argument("--html", type=Path, help="write the HTML page here")
    parser.add_argument("--png", type=Path, help="write a full-page screenshot here")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary for --png")
    args = parser.parse_args(argv)
    page = card_html(args.export)
    if args.html:
        args.html.write_text(page, encoding="utf-8")
    if args.png:
        screenshot(page, args.png, args.chromium)
    if not (args.html or args.png):
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
