import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD } from "../playwright.config";
import { expectAccessible, hydrated, screenshotPath, signIn, signInLink } from "./helpers";

test("sign in through the embedded provider, then sign out", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.screenshot({ path: screenshotPath("signed-in"), fullPage: true });
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(signInLink(page)).toBeVisible();
});

test("a wrong password is refused with a readable message", async ({ page }) => {
  await page.goto("/");
  await signInLink(page).click();
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Invalid user name or password.");
  await page.screenshot({ path: screenshotPath("sign-in-refused"), fullPage: true });
  await expectAccessible(page, "sign-in, refused");
});
