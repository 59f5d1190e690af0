// Drives the mmadac serve page in headless Chromium: a text request by
// prompt ids, an error for prompt text without a tokenizer, an mmu request
// with an uploaded image, and a t2i request. It checks that placeholders
// fill in step by step and that the final text and image appear, and saves
// screenshots. run.sh starts the server and sets the environment:
//
//   MMADAC_URL        the server, http://127.0.0.1:PORT
//   ARTIFACTS         folder for the screenshots
//   CHROMIUM          the browser executable (Debian's /usr/bin/chromium)
//   MMU_IMAGE         an image file to upload
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const url = process.env.MMADAC_URL;
const artifacts = process.env.ARTIFACTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const mmuImage = process.env.MMU_IMAGE;
if (!url || !artifacts || !mmuImage) {
  console.error("test.cjs: set MMADAC_URL, ARTIFACTS and MMU_IMAGE (run.sh does)");
  process.exit(2);
}

// The prompt of the upstream golden text case and the caption of a t2i case.
const TEXT_IDS = "115, 3, 109, 172, 167, 35, 225, 148, 154, 37, 29, 26";
const QUESTION_IDS = "240, 251, 109, 201, 252, 209, 129, 88, 138, 254, 251, 109, 252";
const CAPTION_IDS = "106, 105, 8, 144, 72, 226, 139";

let failures = 0;
function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + what);
  if (!cond) failures++;
}

// Records, on every change of the output, how many placeholders are left
// and which image the preview shows.
function installRecorder(page) {
  return page.evaluate(() => {
    window.__masked = [];
    window.__pictures = [];
    const tokens = document.getElementById("tokens");
    new MutationObserver(() => {
      const n = tokens.querySelectorAll(".tok.masked").length;
      const last = window.__masked[window.__masked.length - 1];
      if (n !== last) window.__masked.push(n);
    }).observe(tokens, { subtree: true, childList: true, attributes: true, characterData: true });
    // Each step event rewrites the step counter. Events that reach the
    // page in one network read are handled in one task, so the token
    // observer above may see only the first and last state of a fast run.
    // The counter's mutation records still number every step.
    window.__stepUpdates = 0;
    new MutationObserver((records) => { window.__stepUpdates += records.length; })
      .observe(document.getElementById("step"), { subtree: true, childList: true, characterData: true });
    const pic = document.getElementById("picture");
    new MutationObserver(() => { if (pic.src) window.__pictures.push(pic.src); }).observe(pic, { attributes: true, attributeFilter: ["src"] });
  });
}

async function submitAndWait(page, state) {
  await page.click("#run");
  await page.waitForSelector(`#state[data-state="${state}"]`, { timeout: 60000 });
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mmadac-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    const external = [];
    page.on("request", (r) => { const u = r.url(); if (!u.startsWith(url) && !u.startsWith("data:") && !u.startsWith("blob:" + url)) external.push(u); });
    page.on("pageerror", (e) => { console.log("page error: " + e.message); failures++; });

    await page.goto(url);
    await page.waitForFunction(() => !document.getElementById("model").textContent.startsWith("loading"));
    check(await page.inputValue("#steps") === "128", "the form shows the default steps (128)");
    check(await page.isVisible("#tokenizer-note"), "the page says to enter prompt ids without a tokenizer");
    await installRecorder(page);

    // Text by prompt ids: placeholders appear and fill in step by step.
    await page.fill("#prompt_ids", TEXT_IDS);
    await page.fill("#steps", "64");
    await page.fill("#gen_length", "64");
    await page.fill("#block_length", "64");
    await page.click("#run");
    await page.waitForFunction(() => {
      const n = document.querySelectorAll(".tok.masked").length;
      return n > 0 && n < 64;
    }, null, { timeout: 60000 }).catch(() => {});
    await page.screenshot({ path: path.join(artifacts, "text-progress.png") });
    await page.waitForSelector('#state[data-state="done"]', { timeout: 60000 });
    const masked = await page.evaluate(() => window.__masked);
    // Under load the page may first render after a few steps, so the
    // first count seen can be below 64; it must still show placeholders.
    check(masked[0] > 0 && masked[0] <= 64, `placeholders shown while the answer resolves (first count ${masked[0]})`);
    check(masked[masked.length - 1] === 0, "no placeholder left at the end");
    const stepUpdates = await page.evaluate(() => window.__stepUpdates);
    check(stepUpdates >= 64, `the page handled every step (${stepUpdates} step counter updates; placeholder counts seen ${masked.join(" ")})`);
    check(await page.locator(".tok.gen").count() === 64, "64 generated positions shown");
    const answer = await page.textContent("#answer");
    check(/^ids: (\d+ ){63}\d+$/.test(answer), "the answer shows the 64 generated ids");
    check(await page.textContent("#step") === "64/64", "the step counter reads 64/64");
    check(/^\d+(\.\d+)?$/.test(await page.textContent("#rate")), "tokens per second shown");
    await page.screenshot({ path: path.join(artifacts, "text-final.png") });

    // Prompt text without a tokenizer: the server's 400 names the field.
    await page.fill("#prompt_ids", "");
    await page.fill("#prompt", "hello");
    await submitAndWait(page, "error");
    check((await page.textContent("#error")).includes("send prompt_ids"), "the error says to send prompt_ids");
    check(await page.getAttribute("#prompt", "class") === "invalid", "the prompt field is marked invalid");
    await page.screenshot({ path: path.join(artifacts, "text-error.png") });
    await page.fill("#prompt", "");

    // Image understanding with an uploaded image.
    await page.click('.tabs button[data-mode="mmu"]');
    await page.setInputFiles("#image", mmuImage);
    await page.fill("#prompt_ids", QUESTION_IDS);
    await page.fill("#steps", "8");
    await page.fill("#gen_length", "16");
    await page.fill("#block_length", "8");
    await submitAndWait(page, "done");
    check(/^ids: (\d+ ){15}\d+$/.test(await page.textContent("#answer")), "the mmu answer shows 16 ids");
    check(await page.locator(".tok.masked").count() === 0, "no mmu placeholder left");
    await page.screenshot({ path: path.join(artifacts, "mmu-final.png") });

    // Text to image: previews, then the final image.
    await page.click('.tabs button[data-mode="t2i"]');
    await page.fill("#prompt_ids", CAPTION_IDS);
    await page.fill("#timesteps", "12");
    await submitAndWait(page, "done");
    const pictures = await page.evaluate(() => window.__pictures);
    check(pictures.length >= 3, `the preview changed several times (${pictures.length} images)`);
    pictures.forEach((src, i) => {
      const name = `t2i-image-${String(i + 1).padStart(2, "0")}.png`;
      fs.writeFileSync(path.join(artifacts, name), Buffer.from(src.split(",")[1], "base64"));
    });
    // Masked positions are painted mid-grey (128, 128, 128) in previews.
    const grey = await page.evaluate(async (src) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] === 128 && d[i + 1] === 128 && d[i + 2] === 128) n++;
      return n;
    }, pictures[0]);
    check(grey >= 16, `the first preview shows masked positions in grey (${grey} grey pixels)`);
    const size = await page.evaluate(() => [document.getElementById("picture").naturalWidth, document.getElementById("picture").naturalHeight]);
    check(size[0] === 16 && size[1] === 16, `the final image is 16x16 (got ${size.join("x")})`);
    check(await page.textContent("#masked") === "0", "no image position masked at the end");
    check(await page.textContent("#step") === "12/12", "the step counter reads 12/12");
    await page.screenshot({ path: path.join(artifacts, "t2i-final.png") });

    check(external.length === 0, "the page requested nothing from other hosts " + external.join(" "));
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(failures === 0 ? "browser test passed" : `browser test: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
