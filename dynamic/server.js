'use strict';
// Dynamic backend of the reference stack: a small Express app that answers
// generated records (made with chance) and says who served them.
//
// Environment:
//   INSTANCE_NAME  name sent in X-Served-By and "served_by" (required,
//                  1-64 chars of A-Z a-z 0-9 . _ -)
//   PORT           TCP port to listen on (default 3000)
//   HOST           address to bind (default 127.0.0.1)
//
// Routes:
//   GET /          {"served_by", "count", "seed", "records": [...]}
//                  query: count=1..50 (default 5), seed=0..2147483647,
//                         delay_ms=0..10000 (simulated work before answering)
//   GET /healthz   {"status": "ok", "served_by"}
// Every response, errors included, carries X-Served-By.
// SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.
//
// Runs with Debian's packages: NODE_PATH=/usr/share/nodejs node server.js

const http = require('http');
// express and chance are loaded once the environment is known to be good
// (bad settings fail fast, before the slower module loading).
let express = null;
let Chance = null;
function loadModules() {
    express = express || require('express');
    Chance = Chance || require('chance');
}

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const KEEPALIVE_TIMEOUT_MS = 75000;   // longer than the proxy pool's ttl=60
const HEADERS_TIMEOUT_MS = 76000;     // must exceed keepAliveTimeout
const SHUTDOWN_GRACE_MS = 15000;      // hard limit for in-flight requests

function fail(message) {
    process.stderr.write(`dynamic server: ${message}\n`);
    process.exit(2);
}

function readConfig(env) {
    const name = env.INSTANCE_NAME;
    if (name === undefined || !NAME_RE.test(name)) {
        fail(`INSTANCE_NAME=${JSON.stringify(name === undefined ? '' : name)} is invalid: ` +
             'expected 1-64 characters of A-Z a-z 0-9 . _ -');
    }
    const portText = env.PORT === undefined ? '3000' : env.PORT;
    if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) {
        fail(`PORT=${JSON.stringify(portText)} is invalid: expected an integer 1-65535`);
    }
    const host = env.HOST === undefined ? '127.0.0.1' : env.HOST;
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(host)) {
        fail(`HOST=${JSON.stringify(host)} is invalid: expected an IP address or host name`);
    }
    return { name, port: Number(portText), host };
}

// Query parameters of GET /: name -> [min, max, default].
const QUERY_LIMITS = {
    count: [1, 50, 5],
    seed: [0, 2147483647, null],
    delay_ms: [0, 10000, 0],
};

class BadRequest extends Error {}

function parseQuery(query) {
    const out = {};
    for (const key of Object.keys(query)) {
        if (!Object.prototype.hasOwnProperty.call(QUERY_LIMITS, key)) {
            throw new BadRequest(`unknown query parameter "${key}"; ` +
                                 `allowed: ${Object.keys(QUERY_LIMITS).join(', ')}`);
        }
    }
    for (const [key, [min, max, dflt]] of Object.entries(QUERY_LIMITS)) {
        const raw = query[key];
        if (raw === undefined) {
            out[key] = dflt;
            continue;
        }
        if (typeof raw !== 'string') {
            throw new BadRequest(`query parameter "${key}" given more than once`);
        }
        if (!/^[0-9]{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
            throw new BadRequest(`query parameter "${key}" must be an integer ` +
                                 `${min}-${max}, got ${JSON.stringify(raw.slice(0, 40))}`);
        }
        out[key] = Number(raw);
    }
    return out;
}

function makeRecords(count, seed) {
    loadModules();
    const chance = seed === null ? new Chance() : new Chance(seed);
    const records = [];
    for (let i = 0; i < count; i++) {
        records.push({
            id: chance.guid({ version: 4 }),
            name: chance.name(),
            city: chance.city(),
            country: chance.country({ full: true }),
            profession: chance.profession(),
            favourite_animal: chance.animal(),
        });
    }
    return records;
}

function createApp(name, state) {
    loadModules();
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.set('query parser', 'simple');   // no nested objects from qs

    app.use((req, res, next) => {
        res.set('X-Served-By', name);
        res.set('Cache-Control', 'no-store');
        if (state.stopping) {
            res.set('Connection', 'close');
        }
        next();
    });

    app.all('/', (req, res, next) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
            res.set('Allow', 'GET, HEAD');
            res.status(405).json({ error: `method ${req.method} not allowed`, served_by: name });
            return;
        }
        let params;
        try {
            params = parseQuery(req.query);
        } catch (err) {
            next(err);
            return;
        }
        const answer = () => {
            res.json({
                served_by: name,
                count: params.count,
                seed: params.seed,
                records: makeRecords(params.count, params.seed),
            });
        };
        if (params.delay_ms > 0) {
            const timer = setTimeout(answer, params.delay_ms);
            res.on('close', () => clearTimeout(timer));
        } else {
            answer();
        }
    });

    app.all('/healthz', (req, res) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
            res.set('Allow', 'GET, HEAD');
            res.status(405).json({ error: `method ${req.method} not allowed`, served_by: name });
            return;
        }
        res.json({ status: state.stopping ? 'stopping' : 'ok', served_by: name });
    });

    app.use((req, res) => {
        res.status(404).json({ error: 'not found', served_by: name });
    });

    // Express error handler (4 arguments): bad input -> 400, anything else -> 500.
    // eslint-disable-next-line no-unused-vars
    app.use((err, req, res, next) => {
        if (err instanceof BadRequest) {
            res.status(400).json({ error: err.message, served_by: name });
            return;
        }
        const status = err.status || err.statusCode || 500;
        if (status >= 500) {
            process.stderr.write(`dynamic server ${name}: ${err.stack || err}\n`);
        }
        res.status(status).json({ error: status >= 500 ? 'internal error' : String(err.message),
                                  served_by: name });
    });
    return app;
}

function main() {
    const cfg = readConfig(process.env);
    const state = { stopping: false };
    const server = http.createServer(createApp(cfg.name, state));
    server.keepAliveTimeout = KEEPALIVE_TIMEOUT_MS;
    server.headersTimeout = HEADERS_TIMEOUT_MS;

    server.on('error', (err) => {
        fail(`cannot listen on ${cfg.host}:${cfg.port}: ${err.message}`);
    });

    const stop = (signal) => {
        if (state.stopping) {
            return;
        }
        state.stopping = true;
        process.stdout.write(`dynamic server ${cfg.name}: ${signal}, finishing requests in flight\n`);
        // close() stops accepting and closes idle keep-alive connections; busy
        // ones get "Connection: close" on their answer and end after it.
        server.close(() => {
            process.stdout.write(`dynamic server ${cfg.name}: stopped\n`);
            process.exit(0);
        });
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        sweep.unref();
        setTimeout(() => {
            process.stderr.write(`dynamic server ${cfg.name}: requests still open after ` +
                                 `${SHUTDOWN_GRACE_MS} ms, exiting\n`);
            process.exit(1);
        }, SHUTDOWN_GRACE_MS).unref();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));

    server.listen(cfg.port, cfg.host, () => {
        process.stdout.write(`dynamic server ${cfg.name} listening on ${cfg.host}:${cfg.port}\n`);
    });
}

if (require.main === module) {
    main();
}

module.exports = { createApp, parseQuery, makeRecords };
