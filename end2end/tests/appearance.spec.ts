import { test, expect, Page } from "@playwright/test";
import { ADMIN_PASSWORD, PORT } from "../playwright.config";
import { buildImage, hydrated, screenshotPath, signIn, skopeoPush } from "./helpers";

const host = `127.0.0.1:${PORT}`;
const admin = `admin:${ADMIN_PASSWORD}`;

/** WCAG contrast of each visible text element's colour against the background it sits on. */
async function lowContrast(page: Page, selectors: string): Promise<string[]> {
  return page.evaluate((selectors) => {
    const rgb = (css: string) => (css.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]: number[]) => {
      const channel = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const background = (element: Element | null): number[] => {
      for (let e = element; e; e = e.parentElement) {
        const [r, g, b, a] = rgb(getComputedStyle(e).backgroundColor);
        if (a === undefined || a > 0.5) return [r, g, b];
      }
      return [255, 255, 255];
    };
    const failures: string[] = [];
    for (const element of Array.from(document.querySelectorAll(selectors))) {
      if (!(element as HTMLElement).offsetParent || !element.textContent?.trim()) continue;
      const fore = luminance(rgb(getComputedStyle(element).color));
      const back = luminance(background(element));
      const ratio = (Math.max(fore, back) + 0.05) / (Math.min(fore, back) + 0.05);
      if (ratio < 4.5) failures.push(`${element.tagName.toLowerCase()}.${element.className} "${element.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
    }
    return failures;
  }, selectors);
}

const TEXT = "h1, h2, p, a, th, td, label, button, code, .muted, .tag, .badge, .when, .notice, summary, dt, dd";

for (const colorScheme of ["light", "dark"] as const) {
  test(`text passes WCAG AA contrast in the ${colorScheme} theme`, async ({ browser }) => {
    skopeoPush(buildImage("look"), host, "look/app:v1", admin);
    const context = await browser.newContext({ colorScheme });
    const page = await context.newPage();
    await page.goto("/ns/look/streams/app");
    await hydrated(page);
    await signIn(page, "admin", ADMIN_PASSWORD);
    await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
    expect(await lowContrast(page, TEXT)).toEqual([]);
    await page.screenshot({ path: screenshotPath(`theme-${colorScheme}`), fullPage: true });
    await page.goto("/ns/look");
    await expect(page.locator('tr[data-stream="app"]')).toBeVisible();
    expect(await lowContrast(page, TEXT)).toEqual([]);
    await context.close();
  });
}

test("a narrow screen shows the stream page without sideways scrolling", async ({ browser }) => {
  skopeoPush(buildImage("narrow"), host, "look/narrow:v1", admin);
  const context = await browser.newContext({ viewport: { width: 375, height: 740 } });
  const page = await context.newPage();
  await page.goto("/ns/look/streams/narrow");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
  // Nothing sticks out of the page except inside its own scroller (wide tables, long commands).
  const wide = await page.evaluate(() =>
    Array.from(document.querySelectorAll("body *"))
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .filter((e) => {
        for (let a = e.parentElement; a; a = a.parentElement) {
          if (["auto", "scroll", "hidden"].includes(getComputedStyle(a).overflowX)) return false;
        }
        return true;
      })
      .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`),
  );
  expect(wide).toEqual([]);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await expect(page.getByRole("button", { name: "Copy podman pull command" })).toBeInViewport();
  await page.screenshot({ path: screenshotPath("narrow-stream"), fullPage: true });
  await context.close();
});
