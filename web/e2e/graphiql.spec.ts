// GraphiQL at /graphql comes from Parley's own build (no CDN: works air-gapped, and the page's
// CSP allows only Parley's own scripts), renders its editor and runs a query.
import { expect, screenshot, test } from "./support";

test("GraphiQL loads from Parley's own assets, renders its editor and runs a query", async ({
  page,
  context,
  baseURL,
}) => {
  const origin = new URL(baseURL ?? "").origin;
  const elsewhere: string[] = [];
  const own = (url: string) =>
    url.startsWith("data:") || url.startsWith("blob:") || new URL(url).hostname === "127.0.0.1";
  context.on("request", (request) => {
    if (!own(request.url())) elsewhere.push(request.url());
  });
  page.on("websocket", (ws) => {
    if (new URL(ws.url()).hostname !== "127.0.0.1") elsewhere.push(ws.url());
  });
  const assets: string[] = [];
  page.on("response", (response) => {
    if (response.request().resourceType() === "script") assets.push(response.url());
  });

  await page.goto("/graphql");
  await expect(page).toHaveTitle("Parley GraphiQL");
  const editor = page.locator(".graphiql-query-editor .CodeMirror");
  await expect(editor).toBeVisible();
  await expect(page.getByText(/Loading/)).toHaveCount(0);
  expect(assets.length).toBeGreaterThan(0);
  for (const url of assets) expect(url.startsWith(`${origin}/assets/`), url).toBe(true);

  // Replace the sample query with one that needs no sign-in, and run it.
  await editor.click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  await page.keyboard.type("{ __typename }");
  await page.getByRole("button", { name: /Execute query/ }).click();
  await expect(page.locator(".graphiql-response")).toContainText('"__typename": "Query"');
  await screenshot(page, "graphiql");

  expect(elsewhere, "requests that left 127.0.0.1").toEqual([]);
});
