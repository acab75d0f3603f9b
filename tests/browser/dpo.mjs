// The DPO page as a person sees it, in headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core, presenting client
// certificates through its clientCertificates option. Run by the Rust
// integration test tests/it/browser.rs, which starts a real gateway and
// passes its address and PKI directory:
//
//   BRDO_URL=https://localhost:PORT BRDO_PKI=DIR BRDO_SHOT=out.png node dpo.mjs
//
// Exits non-zero with a message on the first thing that is not as expected.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const url = process.env.BRDO_URL;
const pki = process.env.BRDO_PKI;
const shot = process.env.BRDO_SHOT;
assert.ok(url && pki, 'BRDO_URL and BRDO_PKI are required');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function as(stem) {
  return browser.newContext({
    // The gateway's certificate comes from the test CA; certificate checks
    // of the gateway itself are covered by the Rust tests.
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: url, certPath: `${pki}/${stem}.crt`, keyPath: `${pki}/${stem}.key` }],
  });
}

const results = {};
try {
  // The gateway DPO: everything, filterable, with proofs.
  const dpo = await as('dpo-gateway');
  const page = await dpo.newPage();
  const first = await page.goto(`${url}/dpo`);
  assert.equal(first.status(), 200, 'the DPO page loads');
  assert.equal(await page.title(), 'Brdo audit log');
  const panel = await page.locator('#verification').innerText();
  assert.match(panel, /Signature: valid/, `verification panel: ${panel}`);
  assert.match(panel, /Root: matches the stored records/);
  const rows = await page.locator('#records tbody tr').count();
  assert.ok(rows >= 5, `a table of records (${rows} rows)`);
  // Partner-supplied text is shown as text, never run.
  assert.equal(await page.locator('script').count(), 0, 'no script element on the page');
  assert.ok((await page.content()).includes('&lt;script&gt;'), 'the hostile justification is escaped');

  // Apply a filter through the form, as a person would.
  await page.selectOption('select[name="action"]', 'consult');
  await Promise.all([page.waitForURL(/action=consult/), page.click('button[type="submit"]')]);
  const filtered = page.locator('#records tbody tr');
  assert.equal(await filtered.count(), 2, 'two consultations');
  for (const text of await filtered.allInnerTexts()) {
    assert.match(text, /consult/, `row: ${text}`);
  }
  const officers = (await filtered.allInnerTexts()).join('\n');
  assert.match(officers, /insp\.hoxha/, 'the officers who read are named');
  assert.match(officers, /analyst\.eu/);
  assert.match(officers, /<script>alert\(1\)<\/script> case 7/, 'the hostile justification reads as text');
  const csv = await page.locator('#export-csv').getAttribute('href');
  assert.match(csv, /action=consult/, 'export links keep the filter');
  assert.match(csv, /format=csv/);

  // Open a record: its inclusion in the signed checkpoint is checked.
  await Promise.all([page.waitForURL(/\/dpo\/records\//), filtered.first().locator('a').click()]);
  assert.match(await page.locator('#inclusion').innerText(), /the inclusion proof verifies/);
  assert.match(await page.locator('#record').innerText(), /justification/);
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  results.gateway_dpo = { rows, filtered: 2 };

  // A partner's DPO sees its partner's records only.
  const serbia = await (await as('dpo-RS-MOI')).newPage();
  assert.equal((await serbia.goto(`${url}/dpo`)).status(), 200);
  assert.match(await serbia.locator('body').innerText(), /data-protection officer of RS-MOI/);
  const own = await serbia.locator('#records tbody tr').allInnerTexts();
  assert.ok(own.length > 0 && own.every((t) => t.includes('RS-MOI')), 'only records involving RS-MOI');
  assert.ok(own.length < rows, 'fewer than the gateway DPO sees');
  results.partner_dpo = { rows: own.length };

  // A page from elsewhere (not the gateway's origin) submits a form to a
  // state-changing call; the browser presents the DPO's certificate, the
  // gateway refuses the request as cross-site before any handler runs.
  const elsewhere = await dpo.newPage();
  await elsewhere.setContent(
    `<form method="post" enctype="text/plain" action="${url}/v1/messages/00000000-0000-7000-8000-000000000000/hold">` +
    `<input name='{"reason":"x","pad":"' value='"}'><button type="submit">go</button></form>`);
  const [forged] = await Promise.all([elsewhere.waitForNavigation(), elsewhere.click('button')]);
  assert.equal(forged.status(), 403, 'a cross-site form post is refused');
  assert.match(await forged.text(), /cross_site_request/);
  results.cross_site = { status: forged.status() };

  // A partner system's certificate is refused.
  const partner = await (await as('partner-AL-CTD')).newPage();
  const refused = await partner.goto(`${url}/dpo`);
  assert.equal(refused.status(), 403, 'a partner certificate gets 403');
  assert.match(await partner.locator('body').innerText(), /forbidden_role/);
  results.partner = { status: refused.status() };
  console.log(JSON.stringify({ ok: true, ...results }));
} catch (e) {
  console.error(`DPO page check failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
