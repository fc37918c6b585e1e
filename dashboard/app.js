/*
 * Gateway live ops dashboard (plain browser JS, no build step).
 * - Subscribes to `dashboard/stream` (SSE): `sample` events (~1/s) and `gateway` events.
 * - Keeps a rolling window of the last 300 samples; samples with t <= last t are ignored,
 *   so the history replayed on every (re)connect never duplicates data. Events dedupe by seq.
 * - One <section class="route" data-route=NAME> per route with three uPlot charts
 *   (traffic / latency / errors), big numbers and an upstream table.
 * - Header shows policy version, connection state, last sample and active overrides.
 * Stable test hooks (keep): section.route[data-route], .backup-share/.p99[data-value], .phase,
 *   tr[data-upstream] .breaker/.health/.share, .chart[data-chart], body[data-samples][data-connection],
 *   #overrides li[data-override-id], #timeline li[data-seq][data-kind], window.__dashboard.
 */
(function () {
  'use strict';

  const MAX_SAMPLES = 300, MAX_EVENTS = 100, SKIP_KINDS = new Set(['attempt.failed']);
  const C = { primary: '#4ea1ff', backup: '#f5a524', share: '#e6edf3', p50: '#56d4dd', p95: '#a371f7',
    p99: '#f778ba', signal: '#ffffff', thr: '#ff5c5c', rec: '#3fb950', err: '#ff5c5c', shed: '#d29922',
    req: '#6e7b88', axis: '#9aa7b4', grid: 'rgba(255,255,255,0.07)' };

  const state = { samples: [], events: [], total: 0, lastT: -Infinity, skewMs: 0, overridesKey: '' };
  window.__dashboard = state;
  const panels = new Map(); // route name -> { el, hasShift, charts: {traffic, latency, errors}, rows: Map }
  const chartOf = new Map(); // chart container -> uPlot instance
  const byName = new WeakMap(); // sample -> Map(route name -> route)
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---------- small helpers ----------
  function el(tag, cls, text, attrs) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  const num = (v) => typeof v === 'number' && isFinite(v);
  const fmtPct = (share) => { const p = share * 100; return (Math.abs(p % 1) > 1e-9 && p < 10 ? p.toFixed(1) : Math.round(p)) + ' %'; };
  const fmtMs = (v) => !num(v) ? '—' : v >= 10000 ? (v / 1000).toFixed(0) + ' s' : v >= 1000 ? (v / 1000).toFixed(1) + ' s' : v >= 10 ? Math.round(v) + ' ms' : v.toFixed(1) + ' ms';
  const fmtRate = (v) => !num(v) ? '—' : v >= 100 ? Math.round(v).toString() : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  const fmtTime = (d) => new Date(d).toLocaleTimeString([], { hour12: false });
  function fmtDur(ms) {
    if (ms <= 0) return 'expiring…';
    const s = Math.ceil(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? `${h}h ${m}m` : m ? `${m}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
  }
  function routesOf(s) {
    let m = byName.get(s);
    if (!m) { m = new Map((s.routes || []).map((r) => [r.name, r])); byName.set(s, m); }
    return m;
  }
  const chartHeight = () => parseInt(getComputedStyle(document.documentElement).getPropertyValue('--chart-h'), 10) || 180;
  const axisFont = () => (chartHeight() >= 200 ? '15px' : '13px') + ' system-ui, sans-serif';

  // ---------- uPlot chart factories ----------
  function line(label, stroke, extra) {
    return Object.assign({ label, stroke, width: 2, points: { show: false }, spanGaps: false,
      value: (u, v) => (v == null ? '—' : fmtRate(v)) }, extra);
  }
  function axes(yFmt, right) {
    const base = (o) => Object.assign({ stroke: C.axis, font: axisFont(), grid: { stroke: C.grid, width: 1 }, ticks: { stroke: C.grid, width: 1 } }, o);
    const list = [base({ space: 90, values: (u, splits) => splits.map((v) => fmtTime(v * 1000)) }),
      base({ size: 64, values: (u, splits) => splits.map((v) => (v == null ? null : yFmt(v))) })];
    if (right) list.push(base(Object.assign({}, right, { side: 1, grid: { show: false } })));
    return list;
  }
  function lastVal(arr) { for (let i = arr.length - 1; i >= 0; i--) if (arr[i] != null) return arr[i]; return null; }

  // Shade the latency plot: green below recoverMs, amber between, red above thresholdMs.
  function zoneHook(u) {
    const thr = u.data[5] && lastVal(u.data[5]), rec = u.data[6] && lastVal(u.data[6]);
    if (!num(thr)) return;
    const { left, top, width, height } = u.bbox, ctx = u.ctx;
    const clampY = (y) => Math.min(top + height, Math.max(top, y));
    const yT = clampY(u.valToPos(thr, 'y', true)), yR = num(rec) ? clampY(u.valToPos(rec, 'y', true)) : yT;
    ctx.save();
    ctx.fillStyle = 'rgba(255,92,92,0.13)'; ctx.fillRect(left, top, width, yT - top);
    ctx.fillStyle = 'rgba(245,165,36,0.10)'; ctx.fillRect(left, yT, width, yR - yT);
    ctx.fillStyle = 'rgba(63,185,80,0.08)'; ctx.fillRect(left, yR, width, top + height - yR);
    ctx.restore();
  }

  function chartOpts(kind, hasShift, width) {
    const o = { width, height: chartHeight(), cursor: { sync: { key: 'gw' }, drag: { x: false, y: false } },
      legend: { live: true }, scales: { x: { time: true } }, series: [{ value: (u, v) => (v == null ? '—' : fmtTime(v * 1000)) }] };
    if (kind === 'traffic') {
      o.series.push(
        line('primary/s', C.primary, { value: (u, v, si, i) => (i == null || v == null ? '—' : fmtRate(v - (u.data[2][i] || 0))) }),
        line('backup/s', C.backup, { fill: 'rgba(245,165,36,0.45)' }));
      o.bands = [{ series: [1, 2], fill: 'rgba(78,161,255,0.35)' }];
      o.scales.y = { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)] };
      if (hasShift) {
        o.series.push(line('backup share', C.share, { scale: '%', dash: [6, 4], value: (u, v) => (v == null ? '—' : fmtPct(v / 100)) }));
        o.scales['%'] = { range: [0, 100] };
      }
      o.axes = axes(fmtRate, hasShift && { scale: '%', size: 56, values: (u, sp) => sp.map((v) => v + '%') });
    } else if (kind === 'latency') {
      o.series.push(line('p50', C.p50, { value: (u, v) => fmtMs(v) }), line('p95', C.p95, { value: (u, v) => fmtMs(v) }),
        line('p99', C.p99, { width: 2.5, value: (u, v) => fmtMs(v) }));
      if (hasShift) {
        o.series.push(line('signal', C.signal, { width: 2, dash: [2, 3], value: (u, v) => fmtMs(v) }),
          line('threshold', C.thr, { width: 1.5, dash: [10, 5], value: (u, v) => fmtMs(v) }),
          line('recover', C.rec, { width: 1.5, dash: [10, 5], value: (u, v) => fmtMs(v) }));
        o.hooks = { drawAxes: [zoneHook] };
      }
      o.scales.y = { distr: 3, log: 10 };
      o.axes = axes(fmtMs);
      const major = (u, splits) => splits.map((v) => (Math.abs(Math.log10(v) % 1) < 1e-6 ? v : null)); // decades only
      o.axes[1].grid.filter = major; o.axes[1].ticks.filter = major;
    } else {
      o.series.push(line('errors/s', C.err, { fill: 'rgba(255,92,92,0.25)' }), line('shed/s', C.shed, { fill: 'rgba(210,153,34,0.25)' }),
        line('requests/s', C.req, { scale: 'req', width: 1.5, fill: 'rgba(110,123,136,0.12)' }));
      o.scales.y = { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)] };
      o.scales.req = { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)] };
      o.axes = axes(fmtRate, { scale: 'req', size: 56, values: (u, sp) => sp.map(fmtRate) });
    }
    return o;
  }

  // Column arrays for one route over the sample window.
  function seriesData(name, hasShift) {
    const x = [], tot = [], bak = [], shr = [], p50 = [], p95 = [], p99 = [], sig = [], thr = [], rec = [], er = [], sh = [], rq = [];
    for (const s of state.samples) {
      const r = routesOf(s).get(name), sf = r && r.shift, lat = r && r.latencyMs, tr = r && r.traffic, ra = r && r.rates;
      x.push(s.t / 1000);
      tot.push(tr ? (tr.primaryPerS || 0) + (tr.backupPerS || 0) : null); bak.push(tr ? tr.backupPerS || 0 : null);
      shr.push(sf && num(sf.applied) ? sf.applied * 100 : null);
      p50.push(lat ? lat.p50 : null); p95.push(lat ? lat.p95 : null); p99.push(lat ? lat.p99 : null);
      sig.push(sf && num(sf.signalMs) ? sf.signalMs : null);
      thr.push(sf ? sf.thresholdMs : null); rec.push(sf ? sf.recoverMs : null);
      er.push(ra ? ra.errorsPerS : null); sh.push(ra ? ra.shedPerS : null); rq.push(ra ? ra.requestsPerS : null);
    }
    return {
      traffic: hasShift ? [x, tot, bak, shr] : [x, tot, bak],
      latency: hasShift ? [x, p50, p95, p99, sig, thr, rec] : [x, p50, p95, p99],
      errors: [x, er, sh, rq],
    };
  }

  // ---------- route panels ----------
  function bigNumber(cls, label) {
    const box = el('div', 'big'); box.append(el('span', 'big-label', label), el('span', 'big-value ' + cls, '—'));
    return box;
  }
  function createPanel(name) {
    const sec = el('section', 'route', null, { 'data-route': name });
    const head = el('header', 'route-head');
    const title = el('div', 'route-title'); title.append(el('h2', null, name), el('span', 'route-badges'));
    const bigs = el('div', 'bigs');
    bigs.append(bigNumber('backup-share', 'Backup share'), bigNumber('phase', 'Phase'), bigNumber('p99', 'p99'),
      bigNumber('rps', 'Req/s'), bigNumber('eps', 'Errors/s'));
    head.append(title, bigs);
    const grid = el('div', 'route-grid');
    for (const [kind, cap] of [['traffic', 'Traffic split · attempts/s'], ['latency', 'Latency (primaries) · log ms'], ['errors', 'Errors & shed /s']]) {
      const fig = el('figure', 'chart-card card-' + kind); fig.append(el('figcaption', null, cap), el('div', 'chart', null, { 'data-chart': kind }));
      grid.append(fig);
    }
    const tbl = el('table', 'upstreams'), thead = el('thead'), tr = el('tr');
    for (const h of ['Upstream', 'Role', 'Share', 'Breaker', 'Health', 'Ejected', 'In-flight', 'Overrides']) tr.append(el('th', null, h));
    thead.append(tr); tbl.append(thead, el('tbody'));
    const tcard = el('figure', 'chart-card table-card'); tcard.append(el('figcaption', null, 'Upstreams'), tbl);
    grid.append(tcard);
    sec.append(head, grid);
    $('#routes').append(sec);
    return { el: sec, hasShift: null, charts: {}, rows: new Map() };
  }
  function buildCharts(p, hasShift) {
    for (const u of Object.values(p.charts)) { chartOf.delete(u.root.parentNode); resizeObs.unobserve(u.root.parentNode); u.destroy(); }
    p.charts = {}; p.hasShift = hasShift;
    for (const box of p.el.querySelectorAll('.chart')) {
      const kind = box.dataset.chart, u = new uPlot(chartOpts(kind, hasShift, box.clientWidth || 600), null, box);
      p.charts[kind] = u; chartOf.set(box, u); resizeObs.observe(box);
    }
  }
  function removePanel(name) {
    const p = panels.get(name);
    for (const u of Object.values(p.charts)) { chartOf.delete(u.root.parentNode); resizeObs.unobserve(u.root.parentNode); u.destroy(); }
    p.el.remove(); panels.delete(name);
  }

  function setCell(td, text, value, tone) {
    td.textContent = text;
    if (value !== undefined) td.dataset.value = value;
    td.dataset.tone = tone || '';
  }
  const TONE = { open: 'bad', halfOpen: 'warn', closed: 'ok', unhealthy: 'bad', healthy: 'ok', unknown: 'dim' };
  function renderUpstreams(p, ups) {
    const tbody = $('.upstreams tbody', p.el), seen = new Set();
    for (const up of ups || []) {
      seen.add(up.name);
      let row = p.rows.get(up.name);
      if (!row) {
        row = el('tr', null, null, { 'data-upstream': up.name });
        for (const c of ['name', 'role', 'share', 'breaker', 'health', 'ejected', 'inflight', 'overrides']) row.append(el('td', c));
        p.rows.set(up.name, row);
      }
      tbody.append(row); // (re)append keeps server order
      const td = (c) => $('.' + c, row);
      row.classList.toggle('unavailable', up.available === false);
      setCell(td('name'), up.name + (up.available === false ? ' (unavailable)' : ''));
      setCell(td('role'), up.role, up.role, up.role === 'backup' ? 'backup' : '');
      setCell(td('share'), num(up.share) ? fmtPct(up.share) : '—', num(up.share) ? String(up.share) : '');
      setCell(td('breaker'), up.breaker || '—', up.breaker || '', TONE[up.breaker]);
      setCell(td('health'), up.health || '—', up.health || '', TONE[up.health]);
      setCell(td('ejected'), up.ejected ? 'ejected' : 'no', String(!!up.ejected), up.ejected ? 'bad' : 'dim');
      setCell(td('inflight'), num(up.inflight) ? String(up.inflight) : '—', num(up.inflight) ? String(up.inflight) : '');
      const ov = td('overrides'); ov.textContent = '';
      for (const o of up.overrides || []) ov.append(el('span', 'badge override', o));
    }
    for (const [n, row] of p.rows) if (!seen.has(n)) { row.remove(); p.rows.delete(n); }
  }

  function renderRoute(name, r, overrides) {
    let p = panels.get(name);
    if (!p) { p = createPanel(name); panels.set(name, p); }
    const hasShift = state.samples.some((s) => { const x = routesOf(s).get(name); return x && x.shift; });
    if (p.hasShift !== hasShift) buildCharts(p, hasShift);
    const data = seriesData(name, hasShift);
    for (const k in p.charts) {
      const u = p.charts[k]; u.setData(data[k]);
      if (!(u.cursor.left >= 0) && data[k][0].length) u.setLegend({ idx: data[k][0].length - 1 }); // show latest when not hovering
    }

    const sf = r.shift, applied = sf && num(sf.applied) ? sf.applied : 0, p99 = r.latencyMs ? r.latencyMs.p99 : null;
    const bs = $('.backup-share', p.el); bs.dataset.value = String(applied); bs.textContent = fmtPct(applied);
    bs.dataset.tone = applied > 0 ? 'warn' : 'ok';
    const ph = $('.phase', p.el); ph.textContent = sf ? String(sf.phase) : 'no shift'; ph.dataset.phase = sf ? String(sf.phase) : 'none';
    const pe = $('.p99', p.el); pe.dataset.value = num(p99) ? String(p99) : ''; pe.textContent = fmtMs(p99);
    pe.dataset.tone = sf && num(p99) ? (p99 >= sf.thresholdMs ? 'bad' : p99 >= sf.recoverMs ? 'warn' : 'ok') : '';
    $('.rps', p.el).textContent = fmtRate(r.rates && r.rates.requestsPerS);
    const eps = $('.eps', p.el); eps.textContent = fmtRate(r.rates && r.rates.errorsPerS);
    const errRatio = r.rates && r.rates.requestsPerS > 0 ? r.rates.errorsPerS / r.rates.requestsPerS : 0;
    eps.dataset.tone = errRatio >= 0.05 ? 'bad' : errRatio >= 0.005 ? 'warn' : '';

    const badges = $('.route-badges', p.el); badges.textContent = '';
    if (sf && sf.stalled) badges.append(el('span', 'badge bad', 'primaries stalled'));
    if (sf) badges.append(el('span', 'badge dim', `${sf.quantile || 'p99'} > ${fmtMs(sf.thresholdMs)} trips · < ${fmtMs(sf.recoverMs)} recovers`));
    const mine = overrides.filter((o) => o.route === name || o.route === '*');
    for (const o of mine) badges.append(el('span', 'badge override', o.kind + (o.upstream ? ' ' + o.upstream : '')));
    p.el.classList.toggle('overridden', mine.length > 0);
    renderUpstreams(p, r.upstreams);
  }

  // ---------- header / overrides / timeline ----------
  function overrideTarget(o) {
    let t = (o.route || '*') + (o.upstream ? ' / ' + o.upstream : '');
    if (o.kind === 'pin' && num(o.share)) t += ' → backup ' + fmtPct(o.share);
    if (o.kind === 'breaker' && o.state) t += ' → ' + o.state;
    return t;
  }
  function renderOverrides(list) {
    const key = JSON.stringify(list);
    if (key === state.overridesKey) return;
    state.overridesKey = key;
    const ul = $('#overrides'); ul.textContent = '';
    for (const o of list) {
      const li = el('li', null, null, { 'data-override-id': o.id });
      if (o.expiresAt) li.dataset.expires = String(Date.parse(o.expiresAt));
      li.append(el('span', 'ov-kind', o.kind), el('span', 'ov-target', overrideTarget(o)),
        el('span', 'ov-reason', o.reason ? '“' + o.reason + '”' : '(no reason given)'), el('span', 'ov-ttl', o.expiresAt ? '' : 'no expiry'));
      ul.append(li);
    }
    $('#override-banner').hidden = list.length === 0;
    tick();
  }
  function fmtChange(ev) {
    const share = /^(shift|override)\./.test(ev.kind), f = (v) => (share && num(v) ? fmtPct(v) : num(v) ? fmtRate(v) : String(v));
    let s = '';
    if (ev.before !== undefined || ev.after !== undefined) s += `${ev.before === undefined ? '?' : f(ev.before)} → ${ev.after === undefined ? '?' : f(ev.after)}`;
    if (num(ev.measured)) s += `${s ? '  ·  ' : ''}measured ${share ? fmtMs(ev.measured) : fmtRate(ev.measured)}` +
      (num(ev.threshold) ? ` vs ${share ? fmtMs(ev.threshold) : fmtRate(ev.threshold)}` : '');
    return s;
  }
  const kindTone = (k) => /open|eject|unhealthy|fail/.test(k) ? 'bad' : /^override|ramp|step|trip/.test(k) ? 'warn' : /close|restored|recover/.test(k) ? 'ok' : 'info';
  function renderTimeline() {
    const ol = $('#timeline'); ol.textContent = '';
    for (const ev of state.events) {
      const li = el('li', null, null, { 'data-seq': String(ev.seq), 'data-kind': ev.kind, 'data-tone': kindTone(ev.kind) });
      const top = el('div', 'ev-top');
      top.append(el('time', 'ev-time', ev.at ? fmtTime(ev.at) : ''), el('span', 'ev-kind', ev.kind),
        el('span', 'ev-target', (ev.route || '*') + (ev.upstream ? ' / ' + ev.upstream : '')));
      if (ev.enforced === false) top.append(el('span', 'badge dim', 'not enforced'));
      li.append(top);
      const ch = fmtChange(ev);
      if (ch) li.append(el('div', 'ev-change', ch));
      if (ev.detail) li.append(el('div', 'ev-detail', ev.detail));
      ol.append(li);
    }
    $('#event-count').textContent = state.events.length ? `(${state.events.length})` : '';
  }

  // Once per second: countdowns, "x s ago", staleness.
  function tick() {
    const now = Date.now() - state.skewMs;
    for (const li of document.querySelectorAll('#overrides li[data-expires]')) $('.ov-ttl', li).textContent = 'expires in ' + fmtDur(+li.dataset.expires - now);
    const last = state.samples[state.samples.length - 1], ls = $('#last-sample');
    if (last) {
      const age = Math.max(0, (now - last.t) / 1000);
      ls.textContent = `${fmtTime(last.t)} (${age < 10 ? age.toFixed(1) : Math.round(age)} s ago)`;
      ls.classList.toggle('stale', age > Math.max(5, 3 * (last.intervalMs || 1000) / 1000));
    }
  }

  // ---------- render scheduling ----------
  let pending = null;
  function scheduleRender() { if (!pending) pending = setTimeout(render, 30); }
  function render() {
    pending = null;
    const last = state.samples[state.samples.length - 1];
    if (last) {
      $('#version').textContent = last.version || '—';
      const ovs = last.overrides || [];
      renderOverrides(ovs);
      const live = routesOf(last);
      for (const name of [...panels.keys()]) if (!live.has(name)) removePanel(name);
      for (const [name, r] of live) renderRoute(name, r, ovs);
      $('#routes').dataset.count = String(live.size);
      $('#routes-empty').hidden = live.size > 0;
    }
    if (state.eventsDirty) { state.eventsDirty = false; renderTimeline(); }
    tick();
  }

  // ---------- data intake ----------
  function onSample(s) {
    if (!s || !num(s.t) || s.t <= state.lastT) return; // replayed history after reconnect
    state.lastT = s.t; state.total++;
    state.skewMs = Date.now() - s.t;
    state.samples.push(s);
    if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
    document.body.dataset.samples = String(state.total);
    scheduleRender();
  }
  const seenSeq = new Map();
  function onEvent(ev) {
    if (!ev || !num(ev.seq) || SKIP_KINDS.has(ev.kind)) return;
    const prev = seenSeq.get(ev.seq);
    if (prev && prev.at === ev.at) return; // duplicate (history replay)
    if (prev) state.events = state.events.filter((e) => e !== prev); // seq reused: server restarted
    seenSeq.set(ev.seq, ev);
    state.events.push(ev);
    state.events.sort((a, b) => b.seq - a.seq);
    for (const old of state.events.splice(MAX_EVENTS)) seenSeq.delete(old.seq);
    state.eventsDirty = true;
    scheduleRender();
  }
  function setConnection(c) {
    document.body.dataset.connection = c;
    const e = $('#connection'); e.textContent = c === 'live' ? '● live' : '○ reconnecting…'; e.dataset.state = c;
  }
  function parse(data) { try { return JSON.parse(data); } catch (e) { console.warn('dashboard: bad event data', e); return null; } }

  let es = null, retry = null;
  function connect() {
    es = new EventSource('dashboard/stream');
    es.onopen = () => setConnection('live');
    es.onerror = () => {
      setConnection('reconnecting');
      // EventSource retries by itself unless the server answered with an error; then retry manually.
      if (es.readyState === EventSource.CLOSED) { clearTimeout(retry); retry = setTimeout(connect, 3000); }
    };
    es.addEventListener('sample', (e) => { setConnection('live'); onSample(parse(e.data)); });
    es.addEventListener('gateway', (e) => onEvent(parse(e.data)));
  }

  // ---------- resizing ----------
  const resizeObs = new ResizeObserver((entries) => {
    for (const en of entries) {
      const u = chartOf.get(en.target), w = Math.floor(en.contentRect.width);
      if (u && w > 0 && (w !== u.width || chartHeight() !== u.height)) u.setSize({ width: w, height: chartHeight() });
    }
  });
  window.addEventListener('resize', () => {
    for (const [box, u] of chartOf) if (box.clientWidth > 0) u.setSize({ width: box.clientWidth, height: chartHeight() });
  });

  setConnection('reconnecting');
  setInterval(tick, 1000);
  connect();
})();
