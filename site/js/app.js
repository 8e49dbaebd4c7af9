// Reference stack page: shows who served the page and each asset (static
// tier, lbmethod=sticky) and keeps a live tally of the dynamic servers that
// answer /api/ (lbmethod=roundrobin). No library, no CDN.
(function () {
    'use strict';

    var API_URL = '/api/?count=4';
    var POLL_MS = 1000;
    var SEQUENCE_LENGTH = 30;

    function $(id) { return document.getElementById(id); }

    function el(tag, attrs, text) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
        if (text !== undefined) { node.textContent = text; }
        return node;
    }

    // Name filled in by the static server's server-side include; "unknown"
    // when the page was not served through it.
    function pageServer() {
        var meta = document.querySelector('meta[name="served-by"]');
        var name = meta ? meta.getAttribute('content') : '';
        return (!name || name.indexOf('<!--') === 0) ? 'unknown' : name;
    }

    // Every same-origin asset of the page: the ones the markup references
    // and the ones the browser loaded (e.g. CSS background images).
    function assetUrls() {
        var urls = {};
        var add = function (raw) {
            if (!raw) { return; }
            var u = new URL(raw, location.href);
            if (u.origin === location.origin && u.pathname.indexOf('/api/') !== 0 &&
                u.pathname !== location.pathname) {
                urls[u.pathname + u.search] = true;
            }
        };
        document.querySelectorAll('link[href]').forEach(function (n) { add(n.getAttribute('href')); });
        document.querySelectorAll('script[src], img[src]').forEach(function (n) { add(n.getAttribute('src')); });
        if (window.performance && performance.getEntriesByType) {
            performance.getEntriesByType('resource').forEach(function (e) { add(e.name); });
        }
        return Object.keys(urls).sort();
    }

    function checkAssets() {
        var page = pageServer();
        var body = $('assets');
        var verdict = $('asset-verdict');
        var urls = assetUrls();
        var results = {};
        var rows = urls.map(function (path) {
            var cell = el('td', {}, '\u2026');
            var row = el('tr', { 'data-path': path });
            row.appendChild(el('td', { 'class': 'path' }, path));
            row.appendChild(cell);
            body.appendChild(row);
            return fetch(path, { cache: 'no-store', credentials: 'same-origin' })
                .then(function (res) {
                    var by = res.headers.get('X-Served-By') || '(none)';
                    results[path] = res.ok ? by : by + ' (HTTP ' + res.status + ')';
                    return res.arrayBuffer();
                })
                .catch(function (err) { results[path] = 'error: ' + err.message; })
                .then(function () {
                    cell.textContent = results[path];
                    row.setAttribute('data-served-by', results[path]);
                    if (results[path] !== page) { cell.className = 'mismatch'; }
                });
        });
        return Promise.all(rows).then(function () {
            var servers = {};
            urls.forEach(function (p) { servers[results[p]] = true; });
            var names = Object.keys(servers);
            if (urls.length === 0) {
                verdict.setAttribute('data-state', 'error');
                verdict.textContent = 'No assets found to check.';
            } else if (names.length === 1 && names[0] === page) {
                verdict.setAttribute('data-state', 'same');
                verdict.textContent = 'All ' + urls.length + ' assets came from ' + page +
                    ', the server of the page.';
            } else {
                verdict.setAttribute('data-state', 'mixed');
                verdict.textContent = 'Mixed: page from ' + page + ', assets from ' +
                    names.sort().join(', ') + '.';
            }
            document.body.setAttribute('data-assets-checked', 'true');
        });
    }

    // ---- dynamic tier: live tally ----
    var tally = {};
    var sequence = [];
    var answers = 0;
    var failures = 0;
    var inFlight = false;

    function colourIndex(name) {
        return Object.keys(tally).sort().indexOf(name) % 4;
    }

    function chipLabel(name) {
        var m = /([0-9]+)$/.exec(name);
        return m ? m[1] : name.charAt(0).toUpperCase();
    }

    function drawTally() {
        var box = $('tally');
        var names = Object.keys(tally).sort();
        var max = names.reduce(function (m, n) { return Math.max(m, tally[n]); }, 1);
        names.forEach(function (name) {
            var row = box.querySelector('[data-server="' + CSS.escape(name) + '"]');
            if (!row) {
                row = el('div', { 'class': 'bar-row', 'data-server': name });
                row.appendChild(el('span', { 'class': 'bar-label' }, name));
                var track = el('div', { 'class': 'bar-track' });
                track.appendChild(el('div', { 'class': 'bar' }));
                row.appendChild(track);
                row.appendChild(el('span', { 'class': 'bar-count' }, '0'));
                var next = Array.prototype.find.call(box.children, function (r) {
                    return r.getAttribute('data-server') > name;
                });
                box.insertBefore(row, next || null);
            }
            row.setAttribute('data-count', String(tally[name]));
            var bar = row.querySelector('.bar');
            bar.className = 'bar c' + colourIndex(name);
            bar.style.width = (100 * tally[name] / max).toFixed(1) + '%';
            row.querySelector('.bar-count').textContent = String(tally[name]);
        });
    }

    function drawSequence() {
        var box = $('sequence');
        box.textContent = '';
        sequence.forEach(function (name) {
            box.appendChild(el('span', { 'class': 'chip c' + colourIndex(name), title: name },
                               chipLabel(name)));
        });
    }

    function drawRecords(records) {
        var body = $('records');
        body.textContent = '';
        records.forEach(function (r) {
            var row = el('tr');
            [r.name, r.city, r.country, r.profession].forEach(function (v) {
                row.appendChild(el('td', {}, String(v)));
            });
            body.appendChild(row);
        });
    }

    function status(text, isError) {
        var p = $('api-status');
        p.textContent = text;
        p.className = 'api-status' + (isError ? ' error' : '');
    }

    function poll() {
        if (inFlight) { return; }
        inFlight = true;
        fetch(API_URL, { cache: 'no-store', credentials: 'same-origin' })
            .then(function (res) {
                var by = res.headers.get('X-Served-By');
                return res.json().then(function (data) {
                    if (!res.ok) { throw new Error('HTTP ' + res.status + ': ' + (data.error || '')); }
                    if (!by || by !== data.served_by) {
                        throw new Error('X-Served-By "' + by + '" does not match served_by "' +
                                        data.served_by + '"');
                    }
                    return data;
                });
            })
            .then(function (data) {
                answers += 1;
                tally[data.served_by] = (tally[data.served_by] || 0) + 1;
                sequence.push(data.served_by);
                if (sequence.length > SEQUENCE_LENGTH) { sequence.shift(); }
                drawTally();
                drawSequence();
                drawRecords(data.records);
                document.body.setAttribute('data-api-answers', String(answers));
                status(answers + ' answers, ' + failures + ' failures; last from ' + data.served_by + '.');
            })
            .catch(function (err) {
                failures += 1;
                status('Last call failed: ' + err.message + ' (' + failures + ' failures)', true);
            })
            .then(function () { inFlight = false; });
    }

    function start() {
        checkAssets();
        poll();
        setInterval(poll, POLL_MS);
    }

    // Wait for "load" so that the resource list includes everything the
    // browser fetched (stylesheet images too).
    if (document.readyState === 'complete') {
        start();
    } else {
        window.addEventListener('load', start);
    }
}());
