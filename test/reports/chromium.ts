/**
 * Opens a report in a real headless Chromium (the Debian `chromium` package, which
 * scripts/test-env.sh installs; EGMF_CHROMIUM overrides the path) through puppeteer-core,
 * which drives the system browser and downloads none. Collects everything that failed
 * (console errors, page errors, failed or non-local requests, broken images), measures what
 * rendered, and keeps a full-page screenshot in test-artifacts/<name>.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';
import { REPO } from '../helpers.ts';

export const ARTIFACTS = join(REPO, 'test-artifacts');

export interface RenderCheck {
  /** Top-level <svg> elements with a non-zero bounding box. */
  charts: number;
  /** All top-level <svg> elements. */
  svgs: number;
  /** <table> elements with at least one body row. */
  tables: number;
  images: number;
  brokenImages: string[];
  consoleErrors: string[];
  pageErrors: string[];
  /** Requests that failed, and any request that left the local files (a report needs no network). */
  failedRequests: string[];
  /** Each chart's size as laid out, and how many of its text elements have a non-zero box. */
  chartBoxes: { id: string; width: number; height: number; texts: number; visibleTexts: number }[];
  screenshot: string;
}

/** The little of the DOM the page check uses (the project compiles without the DOM library). */
interface El {
  id: string;
  parentElement: El | null;
  closest(selector: string): El | null;
  querySelectorAll(selector: string): Iterable<El> & { length: number };
  getBoundingClientRect(): { width: number; height: number };
}
interface Img extends El {
  complete: boolean;
  naturalWidth: number;
  src: string;
}

export function chromiumPath(): string {
  const path = process.env.EGMF_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`no Chromium at ${path}: install the Debian package chromium (scripts/test-env.sh does it, run as root: apt-get install chromium), or set EGMF_CHROMIUM to a Chromium binary`);
  }
  return path;
}

/** Opens `htmlPath` via file://, waits for load, and reports what rendered and what failed. */
export async function renderInChromium(htmlPath: string, name: string): Promise<RenderCheck> {
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    const consoleErrors: string[] = [];
    const pageErrors: string[] = [];
    const failedRequests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e instanceof Error ? e.message : String(e)));
    page.on('requestfailed', (r) => failedRequests.push(`${r.url()}: ${r.failure()?.errorText ?? 'failed'}`));
    page.on('request', (r) => {
      if (!/^(file|data|about):/.test(r.url())) failedRequests.push(`${r.url()}: a request outside the report's files`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) failedRequests.push(`${r.url()}: HTTP ${r.status()}`);
    });
    await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load' });
    const seen = await page.evaluate(() => {
      const document = (globalThis as unknown as { document: El }).document;
      const svgs = [...document.querySelectorAll('svg')].filter((s) => !s.parentElement?.closest('svg'));
      const chartBoxes = svgs.map((s, i) => {
        const r = s.getBoundingClientRect();
        const texts = [...s.querySelectorAll('text')];
        const visibleTexts = texts.filter((t) => {
          const b = t.getBoundingClientRect();
          return b.width > 0 && b.height > 0;
        }).length;
        return { id: s.closest('figure')?.id ?? `svg${i}`, width: r.width, height: r.height, texts: texts.length, visibleTexts };
      });
      const tables = [...document.querySelectorAll('table')].filter((t) => t.querySelectorAll('tbody tr').length > 0 && t.getBoundingClientRect().height > 0).length;
      const imgs = [...document.querySelectorAll('img')] as Img[];
      return {
        svgs: svgs.length,
        chartBoxes,
        tables,
        images: imgs.length,
        brokenImages: imgs.filter((im) => !im.complete || im.naturalWidth === 0).map((im) => im.src),
      };
    });
    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
    return {
      charts: seen.chartBoxes.filter((b) => b.width > 0 && b.height > 0).length,
      svgs: seen.svgs,
      tables: seen.tables,
      images: seen.images,
      brokenImages: seen.brokenImages,
      consoleErrors,
      pageErrors,
      failedRequests,
      chartBoxes: seen.chartBoxes,
      screenshot,
    };
  } finally {
    await browser.close();
  }
}
