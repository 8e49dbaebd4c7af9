'use strict';
// Browser test of the reference stack's page: headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core, through the real proxy with
// mod_sticky_route. Starts the stack with scripts/run-stack.sh on its own
// port, always stops it, exits non-zero on any failure.
// Two passes: plain HTTP, then HTTPS (run-stack.sh TLS=files with a
// certificate made here by openssl for a test name; Chromium trusts that
// certificate's key only, by --ignore-certificate-errors-spki-list, and
// reaches the name by --host-resolver-rules), where the page must come over
// HTTP/2 (its navigation entry's nextHopProtocol) with a Secure cookie.
//
//   node tests/browser/page.test.js          (make browser-test)
//
// Environment: BROWSER_TEST_PORT (default 21200; the stack uses PORT..PORT+4,
// the HTTPS pass TLS_PORT=PORT+5), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (default docs/screenshot.png; taken in the HTTP pass).

const { execFileSync, execSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '..', '..');
const PORT = Number(process.env.BROWSER_TEST_PORT || 21200);
const TLS_PORT = PORT + 5;
const TLS_NAME = 'shop.sticky-route.test';
let BASE = `http://127.0.0.1:${PORT}/`;     // the pass's address (HTTP, then HTTPS)
let TLS_PASS = false;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT || path.join(REPO, 'docs', 'screenshot.png');
// Exactly the arguments of ENVIRONMENT.md. playwright-core's launch() adds a
// fresh --user-data-dir (a new temporary profile, removed on close); every
// client below is a browser context of its own (own cookies).
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                       '--no-first-run', '--disable-background-networking',
                       '--disable-component-update', '--disable-sync'];
const STACK_START_TIMEOUT_MS = 60000;
const STACK_STOP_TIMEOUT_MS = 30000;
const OTHER_CONTEXT_TRIES = 8;

const failures = [];
function check(ok, what) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) {
        failures.push(what);
    }
    return ok;
}

// ---- the stack ----------------------------------------------------------------
function startStack(extraEnv) {
    const proc = spawn('bash', [path.join(REPO, 'scripts', 'run-stack.sh')], {
        cwd: REPO,
        env: { ...process.env, PORT: String(PORT), ...extraEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const ready = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(
            `stack not up after ${STACK_START_TIMEOUT_MS} ms:\n${output}`)), STACK_START_TIMEOUT_MS);
        const onData = (chunk) => {
            output += chunk;
            if (output.includes('Press Ctrl-C to stop.')) {
                clearTimeout(timer);
                resolve();
            }
        };
        proc.stdout.on('data', onData);
        proc.stderr.on('data', onData);
        proc.on('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`run-stack.sh exited (${code}) before the stack was up:\n${output}`));
        });
    });
    return { proc, ready, output: () => output };
}

function stopStack(stack) {
    return new Promise((resolve) => {
        if (stack.proc.exitCode !== null || stack.proc.signalCode !== null) {
            resolve(stack.proc.exitCode);
            return;
        }
        const timer = setTimeout(() => {
            console.error(`run-stack.sh still running ${STACK_STOP_TIMEOUT_MS} ms after SIGINT`);
            stack.proc.kill('SIGKILL');
        }, STACK_STOP_TIMEOUT_MS);
        stack.proc.on('exit', (code) => {
            clearTimeout(timer);
            resolve(code);
        });
        stack.proc.kill('SIGINT');
    });
}

// ---- one page, watched for errors ----------------------------------------------
function watch(page, label, errors) {
    page.on('console', (msg) => {
        if (msg.type() === 'error') {
            errors.push(`${label}: console error: ${msg.text()}`);
        }
    });
    page.on('pageerror', (err) => errors.push(`${label}: page error: ${err.message}`));
    page.on('requestfailed', (req) => {
        errors.push(`${label}: request failed: ${req.url()} ${req.failure() && req.failure().errorText}`);
    });
    const responses = [];
    page.on('response', (res) => {
        responses.push(res);
        if (res.status() >= 400) {
            errors.push(`${label}: HTTP ${res.status()} for ${res.url()}`);
        }
    });
    return responses;
}

async function loadPage(context, label, errors) {
    const page = await context.newPage();
    const responses = watch(page, label, errors);
    await page.goto(BASE, { waitUntil: 'load', timeout: 15000 });
    await page.waitForSelector('body[data-assets-checked="true"]', { timeout: 15000 });
    const seen = await page.evaluate(() => ({
        server: document.getElementById('page-server').textContent.trim(),
        verdict: document.getElementById('asset-verdict').getAttribute('data-state'),
        verdictText: document.getElementById('asset-verdict').textContent,
        assets: Array.from(document.querySelectorAll('#assets tr')).map((tr) => ({
            path: tr.getAttribute('data-path'),
            servedBy: tr.getAttribute('data-served-by'),
        })),
    }));
    return { page, responses, ...seen };
}

// Every static response the browser loaded for the page itself (document,
// stylesheets, scripts, images, icon; not the page's own fetch() calls) and
// who served it.
async function staticResponses(responses) {
    const out = [];
    for (const res of responses) {
        const url = new URL(res.url());
        const type = res.request().resourceType();
        if (url.origin !== new URL(BASE).origin || type === 'fetch' || type === 'xhr') {
            continue;
        }
        out.push({ path: url.pathname, servedBy: await res.headerValue('x-served-by') });
    }
    return out;
}

async function newClient(browser) {
    return browser.newContext({ viewport: { width: 1280, height: 680 } });
}

async function run(browser) {
    const errors = [];
    // Client 1: page and assets from one static server, live tally.
    const first = await newClient(browser);
    let firstServer;
    try {
        const p = await loadPage(first, 'client 1', errors);
        firstServer = p.server;
        check(/^static-[12]$/.test(p.server), `page reports its static server (${p.server})`);
        check(p.assets.length >= 5, `page checked its assets (${p.assets.length}: ` +
              `${p.assets.map((a) => a.path).join(' ')})`);
        check(p.assets.every((a) => a.servedBy === p.server),
              `page reports every asset from ${p.server}: ` +
              p.assets.map((a) => `${a.path}=${a.servedBy}`).join(' '));
        check(p.verdict === 'same', `page verdict "${p.verdictText}"`);
        const loaded = await staticResponses(p.responses);
        const referenced = ['/', '/css/style.css', '/js/app.js', '/img/logo.svg', '/img/server.svg',
                            '/img/dots.png'];
        check(referenced.every((r) => loaded.some((l) => l.path === r)),
              `browser loaded page, stylesheet, script and images (${loaded.map((l) => l.path).join(' ')})`);
        check(loaded.every((l) => l.servedBy === p.server),
              `browser received every static response from ${p.server}: ` +
              loaded.map((l) => `${l.path}=${l.servedBy}`).join(' '));
        const cookies = await first.cookies(BASE);
        check(cookies.some((c) => c.name === 'ROUTEID' && c.httpOnly && c.secure === TLS_PASS),
              `ROUTEID cookie set, HttpOnly, ${TLS_PASS ? '' : 'not '}Secure ` +
              `(${cookies.map((c) => `${c.name}=${c.value}${c.secure ? ' Secure' : ''}`).join('; ')})`);
        if (TLS_PASS) {
            const proto = await p.page.evaluate(
                () => performance.getEntriesByType('navigation')[0].nextHopProtocol);
            check(proto === 'h2', `page came over HTTP/2 (nextHopProtocol ${proto})`);
            const assetProtos = await p.page.evaluate(() => performance.getEntriesByType('resource')
                .filter((e) => e.name.startsWith(location.origin)).map((e) => e.nextHopProtocol));
            check(assetProtos.length > 0 && assetProtos.every((x) => x === 'h2'),
                  `assets and API calls over HTTP/2 (${[...new Set(assetProtos)].join(' ')})`);
        }

        // The tally: both dynamic servers, in turn.
        await p.page.waitForFunction(
            () => Number(document.body.getAttribute('data-api-answers') || 0) >= 6,
            null, { timeout: 15000 });
        const tally = await p.page.evaluate(() => {
            const rows = Array.from(document.querySelectorAll('#tally .bar-row'));
            return {
                answers: Number(document.body.getAttribute('data-api-answers')),
                bars: rows.map((r) => ({ server: r.getAttribute('data-server'),
                                         count: Number(r.getAttribute('data-count')) })),
            };
        });
        const names = tally.bars.map((b) => b.server).sort();
        const counts = tally.bars.map((b) => b.count);
        check(JSON.stringify(names) === JSON.stringify(['dynamic-1', 'dynamic-2']),
              `tally shows both dynamic servers (${JSON.stringify(tally.bars)})`);
        check(counts.length === 2 && Math.abs(counts[0] - counts[1]) <= 1 &&
              counts[0] + counts[1] === tally.answers,
              `tally counts differ by at most one after ${tally.answers} answers (${counts.join(', ')})`);
        const records = await p.page.$$eval('#records tr', (rows) => rows.length);
        check(records > 0, `latest records drawn (${records} rows)`);

        if (!TLS_PASS) {
            fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
            await p.page.screenshot({ path: SCREENSHOT, fullPage: true, animations: 'disabled' });
            check(fs.statSync(SCREENSHOT).size > 10000, `screenshot saved to ${SCREENSHOT}`);
        }
    } finally {
        await first.close();
    }

    // Other clients (own browser profile, own cookies) can land on the other
    // static server; each of them also sees one server for page and assets.
    let other = null;
    for (let i = 2; i < 2 + OTHER_CONTEXT_TRIES && other === null; i++) {
        const context = await newClient(browser);
        try {
            const p = await loadPage(context, `client ${i}`, errors);
            const loaded = await staticResponses(p.responses);
            check(p.verdict === 'same' && loaded.every((l) => l.servedBy === p.server),
                  `client ${i}: page and assets from ${p.server}`);
            if (p.server !== firstServer) {
                other = p.server;
            }
        } finally {
            await context.close();
        }
    }
    check(other !== null, `another client landed on the other static server (${other})`);
    check(errors.length === 0, `no console errors, page errors or failed requests` +
          (errors.length ? `:\n    ${errors.join('\n    ')}` : ''));
}

// A self-signed certificate for TLS_NAME and the base64 SHA-256 of its
// public key (what --ignore-certificate-errors-spki-list takes).
function makeCertificate(dir) {
    const crt = path.join(dir, 'proxy.crt');
    const key = path.join(dir, 'proxy.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                             '-nodes', '-days', '2', '-subj', `/CN=${TLS_NAME}`, '-addext',
                             `subjectAltName=DNS:${TLS_NAME}`, '-keyout', key, '-out', crt],
                 { stdio: 'ignore' });
    fs.chmodSync(key, 0o600);
    const spki = execSync(`openssl x509 -in '${crt}' -noout -pubkey | openssl pkey -pubin -outform der` +
                          ' | openssl dgst -sha256 -binary | base64').toString().trim();
    return { crt, key, spki };
}

// One pass: the stack with extraEnv, a browser with extraArgs, the checks.
async function pass(label, extraEnv, extraArgs) {
    console.log(`---- ${label}`);
    const stack = startStack(extraEnv);
    let stopping = false;
    const stopOnSignal = async (sig) => {
        if (stopping) return;
        stopping = true;
        console.error(`${sig}: stopping the stack`);
        await stopStack(stack);
        process.exit(1);
    };
    process.on('SIGINT', stopOnSignal);
    process.on('SIGTERM', stopOnSignal);
    let browser = null;
    try {
        await stack.ready;
        console.log(`stack up at ${BASE}`);
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: [...CHROMIUM_ARGS, ...extraArgs],
        });
        await run(browser);
    } catch (err) {
        check(false, `test aborted: ${err.stack || err}`);
    } finally {
        if (browser) {
            await browser.close().catch(() => {});
        }
        const code = await stopStack(stack);
        check(code === 0, `stack stopped cleanly (run-stack.sh exit ${code})`);
        if (code !== 0) {
            console.error(stack.output());
        }
        process.removeListener('SIGINT', stopOnSignal);
        process.removeListener('SIGTERM', stopOnSignal);
    }
}

async function main() {
    if (!fs.existsSync(CHROMIUM)) {
        console.error(`${CHROMIUM} not found: install Debian's chromium (make deps)`);
        process.exit(1);
    }
    await pass('HTTP', {}, []);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sticky-route-browser-tls-'));
    try {
        const cert = makeCertificate(dir);
        BASE = `https://${TLS_NAME}:${TLS_PORT}/`;
        TLS_PASS = true;
        await pass('HTTPS (TLS=files, h2)',
                   { TLS: 'files', TLS_PORT: String(TLS_PORT), SERVER_NAME: TLS_NAME,
                     TLS_CERT_FILE: cert.crt, TLS_KEY_FILE: cert.key },
                   [`--host-resolver-rules=MAP ${TLS_NAME} 127.0.0.1`,
                    `--ignore-certificate-errors-spki-list=${cert.spki}`]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    if (failures.length) {
        console.error(`\n${failures.length} failure(s)`);
        process.exit(1);
    }
    console.log('\nbrowser test passed');
}

main();
