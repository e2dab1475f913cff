/* findemo dashboard: the single-page app (hash router, live stream, SVG charts, analytics, row history, SQL pad).
   Plain ES2020, no third-party code. Every server value reaches the page as text (createElement/textContent). */
'use strict';
(() => {
  // ---------------------------------------------------------------- DOM helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const PROPS = new Set(['value', 'disabled', 'hidden', 'open', 'checked', 'selected']);

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      else if (k === 'style') el.style.cssText = String(v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.append(k instanceof Node ? k : String(k)); // strings become text nodes
    }
    return el;
  }
  /** Element with attributes and children (strings are text, never markup). */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return append(el, kids);
  }
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    return append(el, kids);
  }

  // ---------------------------------------------------------------- formatting
  const NF = {};
  const nf = (d) => NF[d] || (NF[d] = new Intl.NumberFormat('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
  const num = (v) => (v == null || v === '' || !isFinite(Number(v)) ? null : Number(v));
  const fmtFixed = (v, d = 0) => (num(v) == null ? '—' : nf(d).format(num(v)));
  const fmtInt = (v) => fmtFixed(v, 0);
  function fmtEur(v, d = 2) {
    const n = num(v);
    if (n == null) return '—';
    const sign = n < 0 ? '−' : '';
    const a = Math.abs(n);
    if (a >= 1e9) return sign + '€' + nf(2).format(a / 1e9) + 'B';
    return sign + '€' + nf(d).format(a);
  }
  const fmtPct = (share, d = 1) => (num(share) == null ? '—' : nf(d).format(num(share) * 100) + '%');
  function fmtCompact(v) {
    const n = num(v);
    if (n == null) return '—';
    const a = Math.abs(n);
    if (a >= 1e9) return +(n / 1e9).toFixed(1) + 'B';
    if (a >= 1e6) return +(n / 1e6).toFixed(1) + 'M';
    if (a >= 1e3) return +(n / 1e3).toFixed(1) + 'k';
    return String(+n.toFixed(a < 10 ? 2 : 1));
  }
  function fmtBytes(b) {
    const n = num(b);
    if (n == null) return '—';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0, x = n;
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return (i === 0 ? x : x.toFixed(1)) + ' ' + units[i];
  }
  const fmtSecs = (sec) => (num(sec) == null ? '—' : sec < 1 ? nf(1).format(sec * 1000) + ' ms' : nf(2).format(sec) + ' s');
  const fmtRate = (r) => (num(r) == null ? '—' : r >= 100 ? fmtInt(r) : fmtFixed(r, 1));
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(unix, withSecs = true) {
    if (num(unix) == null) return '—';
    const d = new Date(unix * 1000);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + (withSecs ? ':' + pad(d.getSeconds()) : '');
  }
  function fmtDateTime(unix, ms = false) {
    if (num(unix) == null) return '—';
    const d = new Date(unix * 1000);
    const day = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
    return day + ' ' + fmtTime(unix) + (ms ? '.' + pad(d.getMilliseconds(), 3) : '');
  }
  function fmtAgo(sec) {
    sec = Math.max(0, Math.floor(sec));
    if (sec < 60) return sec + 's';
    if (sec < 3600) return Math.floor(sec / 60) + 'm';
    return Math.floor(sec / 3600) + 'h';
  }
  const str = (v) => (v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

  // ---------------------------------------------------------------- server calls
  class ApiError extends Error {}
  /** JSON from /api; throws ApiError carrying the server's {"error"} text. */
  async function api(path, opts = {}) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json', ...(opts.body ? { 'Content-Type': 'application/json' } : {}) }, ...opts });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError('The dashboard server is unreachable (is `findemo dashboard` still running?).');
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = new ApiError(body && body.error ? String(body.error) : `The dashboard server answered HTTP ${res.status}.`);
      err.body = body;
      throw err;
    }
    if (body == null) throw new ApiError('The dashboard server sent an answer that is not JSON.');
    return body;
  }
  const errorBox = (msg, id) => h('div', { class: 'error-box', id, role: 'alert' }, msg);

  // ---------------------------------------------------------------- tooltip and "updated Ns ago"
  const tipEl = () => $('#tooltip');
  function showTip(text, m) {
    const t = tipEl();
    t.textContent = text;
    t.hidden = false;
    const w = t.offsetWidth, hgt = t.offsetHeight;
    const x = m.x + 14 + w > innerWidth ? m.x - w - 10 : m.x + 14;
    t.style.left = Math.max(4, x) + 'px';
    t.style.top = Math.max(4, m.y - hgt - 10) + 'px';
  }
  const hideTip = () => { tipEl().hidden = true; };

  function tickAgo() {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll('.ago[data-at]')) {
      el.textContent = 'updated ' + fmtAgo(now - Number(el.dataset.at)) + ' ago';
    }
  }
  function setAgo(root, at) {
    if (num(at) == null) return;
    for (const el of root.querySelectorAll('.ago')) el.dataset.at = at;
    tickAgo();
  }
  setInterval(tickAgo, 1000);

  // ---------------------------------------------------------------- charts (SVG)
  const COLORS = { EUR: '#3b82f6', USD: '#10b981', GBP: '#a855f7', success: '#16a34a', pending: '#f59e0b', failed: '#dc2626' };
  const PALETTE = ['#3b82f6', '#10b981', '#a855f7', '#f59e0b', '#ef4444', '#14b8a6', '#6366f1'];
  const noData = (el, msg = 'no data yet') => { el._onHover = null; el.replaceChildren(h('div', { class: 'empty' }, msg)); };
  const widthOf = (el) => Math.max(260, Math.floor(el.clientWidth || 600));

  function niceScale(max, n = 4) {
    if (!(max > 0)) max = 1;
    const raw = max / n, mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw);
    const top = Math.ceil(max / step - 1e-9) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
    return { top, ticks };
  }
  /** Hover support: a chart either sets el._onHover(mouse) -> text, or marks shapes with data-tip. */
  function bindHover(el) {
    if (el._hoverBound) return;
    el._hoverBound = true;
    el.addEventListener('mousemove', (e) => { el._mouse = { x: e.clientX, y: e.clientY }; hoverAt(el); });
    el.addEventListener('mouseleave', () => { el._mouse = null; if (el._onHover) el._onHover(null); hideTip(); });
  }
  function hoverAt(el) {
    const m = el._mouse;
    if (!m) return;
    if (el._onHover) { const text = el._onHover(m); return text ? showTip(text, m) : hideTip(); }
    const hit = document.elementFromPoint(m.x, m.y);
    const target = hit && hit.closest && hit.closest('[data-tip]');
    if (target && el.contains(target)) showTip(target.getAttribute('data-tip'), m); else hideTip();
  }
  function yAxis(g, sc, x0, x1, y, fmt) {
    for (const v of sc.ticks) {
      g.append(s('line', { class: v ? 'grid-line' : 'axis', x1: x0, x2: x1, y1: y(v), y2: y(v) }));
      g.append(s('text', { x: x0 - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
    }
  }

  /** Line/area chart of [[unixSeconds, value], ...] with a time axis. */
  function lineChart(el, pts, { unit, height = 210, fmtV = fmtCompact, color = '#2563eb' } = {}) {
    bindHover(el);
    if (!pts.length) return noData(el);
    const W = widthOf(el), H = height, m = { l: 46, r: 14, t: 22, b: 24 };
    const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
    const sc = niceScale(Math.max(...pts.map((p) => p[1])));
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r);
    const y = (v) => H - m.b - (v / sc.top) * (H - m.t - m.b);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': unit });
    yAxis(svg, sc, m.l, W - m.r, y, fmtCompact);
    const span = t1 - t0, steps = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    const step = steps.find((st) => span / st <= (W - m.l) / 80) || 7200;
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      svg.append(s('line', { class: 'axis', x1: x(t), x2: x(t), y1: H - m.b, y2: H - m.b + 4 }));
      svg.append(s('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, fmtTime(t, step < 60)));
    }
    const line = pts.map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join('');
    svg.append(s('path', { d: `${line}L${x(t1)} ${y(0)}L${x(t0)} ${y(0)}Z`, fill: color, 'fill-opacity': 0.12 }));
    svg.append(s('path', { d: line, fill: 'none', stroke: color, 'stroke-width': 1.5, 'stroke-linejoin': 'round' }));
    svg.append(s('text', { x: m.l, y: 12, 'text-anchor': 'start' }, unit));
    const cursor = s('line', { class: 'axis', y1: m.t, y2: H - m.b, visibility: 'hidden', 'stroke-dasharray': '3 3' });
    const dot = s('circle', { r: 3.5, fill: color, visibility: 'hidden' });
    svg.append(cursor, dot);
    el._onHover = (mouse) => {
      const r = svg.getBoundingClientRect();
      const px = mouse ? (mouse.x - r.left) * (W / r.width) : -1;
      if (px < m.l || px > W - m.r) { cursor.setAttribute('visibility', 'hidden'); dot.setAttribute('visibility', 'hidden'); return null; }
      const t = t0 + ((px - m.l) / (W - m.l - m.r)) * (t1 - t0);
      let best = pts[0];
      for (const p of pts) if (Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      setAttrs(cursor, { x1: x(best[0]), x2: x(best[0]), visibility: 'visible' });
      setAttrs(dot, { cx: x(best[0]), cy: y(best[1]), visibility: 'visible' });
      return fmtTime(best[0]) + '  ' + fmtV(best[1]) + ' ' + unit;
    };
    el.replaceChildren(svg);
    hoverAt(el);
  }

  /** Stacked vertical bars. slots: [{label, tip, values: {key: v}}]; keys: [{key, color}]. */
  function stackedBars(el, slots, keys, { unit, height = 210, fmtV = (v) => fmtCompact(v) + ' ' + unit, valueLabels = false, legend = true } = {}) {
    bindHover(el);
    el._onHover = null;
    if (!slots.length) return noData(el);
    const W = widthOf(el), H = height, m = { l: 46, r: 10, t: valueLabels ? 26 : 22, b: 24 };
    const totals = slots.map((sl) => keys.reduce((a, k) => a + (num(sl.values[k.key]) || 0), 0));
    const sc = niceScale(Math.max(...totals));
    const bw = (W - m.l - m.r) / slots.length;
    const y = (v) => H - m.b - (v / sc.top) * (H - m.t - m.b);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': unit });
    yAxis(svg, sc, m.l, W - m.r, y, fmtCompact);
    const every = Math.max(1, Math.ceil(slots.length / ((W - m.l) / 64)));
    slots.forEach((sl, i) => {
      const x = m.l + i * bw + bw * 0.12, w = Math.max(1, bw * 0.76);
      let acc = 0;
      const tip = [sl.tip || sl.label, ...keys.filter((k) => sl.values[k.key]).map((k) => `${k.key}: ${fmtV(sl.values[k.key])}`)];
      if (keys.length > 1) tip.push(`total: ${fmtV(totals[i])}`);
      for (const k of keys) {
        const v = num(sl.values[k.key]) || 0;
        if (!v) continue;
        svg.append(s('rect', { class: 'seg', x, width: w, y: y(acc + v), height: Math.max(0.5, y(acc) - y(acc + v)), fill: k.color, 'data-tip': tip.join('\n') }));
        acc += v;
      }
      if (valueLabels && bw >= 38 && totals[i]) svg.append(s('text', { class: 'value-label', x: x + w / 2, y: y(acc) - 4, 'text-anchor': 'middle' }, fmtCompact(totals[i])));
      if (i % every === 0) svg.append(s('text', { x: x + w / 2, y: H - 6, 'text-anchor': 'middle' }, sl.label));
    });
    svg.append(s('text', { x: m.l, y: 12, 'text-anchor': 'start' }, unit));
    const kids = [svg];
    if (legend && keys.length > 1) kids.push(h('div', { class: 'legend' }, keys.map((k) => h('span', null, h('i', { style: `background:${k.color}` }), k.key))));
    el.replaceChildren(...kids);
    hoverAt(el);
  }

  /** Donut with a legend of counts and percentages. parts: [{label, value, color}]. */
  function donut(el, parts, { unit } = {}) {
    bindHover(el);
    el._onHover = null;
    const total = parts.reduce((a, p) => a + (num(p.value) || 0), 0);
    if (!total) return noData(el);
    const r = 38, C = 2 * Math.PI * r;
    const svg = s('svg', { viewBox: '0 0 100 100', role: 'img', 'aria-label': unit });
    svg.append(s('circle', { cx: 50, cy: 50, r, fill: 'none', stroke: '#eef0f3', 'stroke-width': 16 }));
    let off = 0;
    for (const p of parts) {
      const v = num(p.value) || 0;
      if (!v) continue;
      const len = (v / total) * C;
      svg.append(s('circle', {
        class: 'seg', cx: 50, cy: 50, r, fill: 'none', stroke: p.color, 'stroke-width': 16,
        'stroke-dasharray': `${len} ${C - len}`, 'stroke-dashoffset': -off, transform: 'rotate(-90 50 50)',
        'data-tip': `${p.label}: ${fmtInt(v)} ${unit} (${fmtPct(v / total)})`,
      }));
      off += len;
    }
    svg.append(s('text', { x: 50, y: 50, 'text-anchor': 'middle', style: 'font-size:14px;font-weight:650;fill:#1d2330' }, fmtCompact(total)));
    svg.append(s('text', { x: 50, y: 63, 'text-anchor': 'middle', style: 'font-size:8px' }, unit));
    const legend = h('div', { class: 'donut-legend' }, parts.map((p) => [
      h('i', { style: `background:${p.color}` }), h('span', null, p.label),
      h('span', { class: 'num' }, fmtInt(p.value)), h('span', { class: 'num muted' }, fmtPct((num(p.value) || 0) / total)),
    ]));
    el.replaceChildren(h('div', { class: 'donut-wrap' }, svg, legend));
    hoverAt(el);
  }

  /** Horizontal bars with value labels. items: [{label, value, valueText, tip}]. */
  function hbars(el, items, { unit, color = '#3b82f6' } = {}) {
    bindHover(el);
    el._onHover = null;
    if (!items.length) return noData(el);
    const W = widthOf(el), row = 22, lw = 150, vw = 130, H = items.length * row + 18;
    const max = Math.max(...items.map((it) => num(it.value) || 0), 1);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': unit });
    svg.append(s('text', { x: W - 4, y: 10, 'text-anchor': 'end' }, unit));
    items.forEach((it, i) => {
      const y = 16 + i * row, bw = Math.max(1, ((num(it.value) || 0) / max) * (W - lw - vw));
      const label = String(it.label);
      svg.append(s('text', { class: 'hbar-label', x: 0, y: y + 14 }, label.length > 22 ? label.slice(0, 21) + '…' : label));
      svg.append(s('rect', { class: 'bar', x: lw, y: y + 3, width: bw, height: row - 7, rx: 2, fill: color, 'data-tip': it.tip || label }));
      svg.append(s('text', { class: 'value-label', x: lw + bw + 6, y: y + 14 }, it.valueText));
    });
    el.replaceChildren(svg);
    hoverAt(el);
  }

  // ---------------------------------------------------------------- tables
  /** A table whose columns are [{label, num, cell(row) -> string|Node, cls(row)}]. */
  function makeTable(id, columns) {
    return h('table', { id, class: 'data' },
      h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null, title: c.title }, c.label)))),
      h('tbody'));
  }
  function setRows(table, columns, rows, { empty = 'no data yet', rowAttrs } = {}) {
    const body = rows.length ? rows.map((r, i) => h('tr', rowAttrs ? rowAttrs(r, i) : null,
      columns.map((c) => h('td', { class: [c.num ? 'num' : '', c.cls ? c.cls(r, i) : ''].join(' ').trim() || null }, c.cell(r, i)))))
      : [h('tr', null, h('td', { class: 'empty-row', colspan: columns.length }, empty))];
    table.tBodies[0].replaceChildren(...body);
  }
  function card(title, { unit, cls, id, body, ago = true, right } = {}) {
    return h('section', { class: 'card ' + (cls || ''), id },
      h('div', { class: 'card-head' }, h('h2', null, title), unit ? h('span', { class: 'unit' }, '(' + unit + ')') : null,
        right || null, ago ? h('span', { class: 'ago' }) : null),
      h('div', { class: 'card-body' }, body));
  }
  const badge = (text, kind) => h('span', { class: 'badge ' + (kind || '') }, text);
  const STATUS_KIND = { success: 'ok', pending: 'warn', failed: 'bad' };
  const statusBadge = (st) => badge(str(st), STATUS_KIND[st]);
  const riskBadge = (r) => badge(str(r), r <= 2 ? 'ok' : r == 3 ? 'warn' : 'bad');
  const txLink = (id) => h('a', { class: 'tx-link', href: '#/tx/' + encodeURIComponent(str(id)), title: str(id) }, str(id));
  const qLink = (text, hash) => h('a', { href: hash }, str(text));
  const hashFor = (tab, params) => '#/analytics/' + tab + '?' + new URLSearchParams(params).toString();

  // ---------------------------------------------------------------- live stream and status strip
  const live = { overview: null, goodOverview: null, pipeline: null, es: null };
  function setConnected(ok) {
    const el = $('#live-state');
    el.textContent = ok ? 'live' : 'reconnecting…';
    el.dataset.live = String(ok);
    document.body.classList.toggle('offline', !ok);
  }
  function renderStatus() {
    const o = live.overview;
    const services = (o && o.services) || [];
    $('#services').replaceChildren(...services.map((sv) =>
      h('span', { class: 'svc' + (sv.up ? '' : ' down'), title: str(sv.detail) }, str(sv.name))));
    const lines = [];
    if (o && o.error) lines.push((/^ClickHouse\b/.test(o.error) ? '' : 'ClickHouse: ') + o.error + ' — retrying every second');
    const down = services.filter((sv) => !sv.up);
    if (down.length) lines.push('Down: ' + down.map((sv) => str(sv.name) + (sv.detail ? ' (' + sv.detail + ')' : '')).join('; '));
    const alert = $('#service-alert');
    alert.textContent = lines.join('\n');
    alert.hidden = !lines.length;
  }
  function startLive() {
    const es = new EventSource('/api/live');
    live.es = es;
    const on = (kind) => (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (_) { return; }
      live[kind] = data;
      if (kind === 'overview' && !data.error) live.goodOverview = data;
      setConnected(true);
      if (kind === 'overview') renderStatus();
      if (current && current.update) current.update(kind, data);
    };
    es.addEventListener('overview', on('overview'));
    es.addEventListener('pipeline', on('pipeline'));
    es.onerror = () => {
      setConnected(false);
      if (es.readyState === EventSource.CLOSED) { es.close(); setTimeout(startLive, 3000); } // the browser gave up: retry ourselves
    };
  }

  // ---------------------------------------------------------------- view: overview
  const KPIS = [
    ['transactions', 'Transactions', fmtInt, 'current rows in silver'],
    ['volume_eur', 'Volume (EUR)', (v) => fmtEur(v, 0), 'all current transactions'],
    ['avg_eur', 'Average transaction (EUR)', (v) => fmtEur(v, 2), 'per transaction'],
    ['active_accounts', 'Active accounts', fmtInt, 'with at least one transaction'],
    ['failed_share', 'Failed', (v) => fmtPct(v, 2), 'share of transactions'],
    ['tps_1m', 'Transactions/s (last minute)', (v) => fmtFixed(v, 1), 'average over 60 s'],
  ];
  const CURRENCY_ORDER = ['EUR', 'USD', 'GBP'];

  function viewOverview(main) {
    const tiles = KPIS.map(([key, label, , foot]) => h('div', { class: 'kpi', 'data-kpi': key, 'data-value': '' },
      h('div', { class: 'kpi-label' }, label), h('div', { class: 'kpi-value' }, '—'), h('div', { class: 'kpi-foot' }, foot)));
    const el = {
      tps: h('div', { id: 'chart-tps', class: 'chart' }), volume: h('div', { id: 'chart-volume', class: 'chart' }),
      status: h('div', { id: 'chart-status', class: 'chart' }), merchants: h('div', { id: 'chart-merchants', class: 'chart' }),
      dailyChart: h('div', { id: 'chart-daily', class: 'chart' }),
    };
    const dailyCols = [
      { label: 'Day', cell: (r) => str(r.day) }, { label: 'Transactions', num: 1, cell: (r) => fmtInt(r.transactions) },
      { label: 'Succeeded', num: 1, cell: (r) => fmtInt(r.succeeded) }, { label: 'Failed', num: 1, cell: (r) => fmtInt(r.failed) },
      { label: 'Pending', num: 1, cell: (r) => fmtInt(r.pending) }, { label: 'Volume (EUR)', num: 1, cell: (r) => fmtEur(r.total_eur) },
      { label: 'Avg (EUR)', num: 1, cell: (r) => fmtEur(r.avg_amount_eur) }, { label: 'Accounts', num: 1, cell: (r) => fmtInt(r.active_accounts) },
      { label: 'Merchants', num: 1, cell: (r) => fmtInt(r.active_merchants) },
    ];
    const fraudCols = [
      { label: 'Account', cell: (r) => qLink(r.account_id, hashFor('accounts', { q: str(r.account_id) })) },
      { label: 'Transactions', num: 1, cell: (r) => fmtInt(r.transactions) }, { label: 'Devices', num: 1, cell: (r) => fmtInt(r.devices) },
      { label: 'IPs', num: 1, cell: (r) => fmtInt(r.ips) }, { label: 'Countries', num: 1, cell: (r) => fmtInt(r.countries) },
      { label: 'Proxy/VPN tx', num: 1, cell: (r) => fmtInt(r.proxy_transactions) }, { label: 'Largest (EUR)', num: 1, cell: (r) => fmtEur(r.max_eur) },
      { label: 'Last seen', num: 1, cell: (r) => fmtDateTime(r.last_seen) },
    ];
    const dailyTable = makeTable('daily-table', dailyCols), fraudTable = makeTable('fraud-table', fraudCols);
    const root = h('div', { id: 'view-overview' },
      h('div', { class: 'view-head' }, h('h1', null, 'Overview'), h('span', { class: 'sub' }, 'gold layer, following the stream'),
        h('span', { class: 'right' }, h('span', { class: 'ago' }))),
      h('div', { class: 'grid kpis' }, tiles),
      h('div', { class: 'grid charts' },
        card('Transactions per second (last 15 min)', { unit: 'tx/s', cls: 'span-8', body: el.tps }),
        card('Status mix (last 15 min)', { unit: 'transactions', cls: 'span-4', body: el.status }),
        card('Volume per minute by currency (EUR)', { unit: 'EUR equivalent', cls: 'span-7', body: el.volume }),
        card('Top merchants (last 15 min)', { unit: 'EUR', cls: 'span-5', body: el.merchants }),
        card('Daily volume', { unit: 'EUR', cls: 'span-4', body: el.dailyChart }),
        card('Daily KPIs', { cls: 'span-8', body: h('div', { class: 'table-wrap' }, dailyTable) }),
        card('Fraud-like bursts', { cls: 'span-12', body: h('div', { class: 'table-wrap' }, fraudTable) })));
    main.append(root);

    function render() {
      const o = live.overview;
      if (!o) return Object.values(el).forEach((c) => noData(c, 'waiting for the live stream…'));
      root.classList.toggle('stale', !!o.error);
      const d = o.error ? live.goodOverview || o : o; // keep the last good figures, greyed
      setAgo(root, d.at);
      const k = d.kpis || {};
      KPIS.forEach(([key, , fmt], i) => {
        tiles[i].setAttribute('data-value', k[key] == null ? '' : String(k[key]));
        tiles[i].children[1].textContent = fmt(k[key]);
      });
      lineChart(el.tps, fillSeconds(d.tps || [], d.at), { unit: 'tx/s', fmtV: (v) => fmtInt(v) });
      const { slots, keys } = volumeSlots(d.volume || []);
      stackedBars(el.volume, slots, keys, { unit: 'EUR', fmtV: (v) => fmtEur(v, 0) });
      const mix = d.status_mix || {};
      donut(el.status, ['success', 'pending', 'failed'].map((st) => ({ label: st, value: mix[st] || 0, color: COLORS[st] })), { unit: 'transactions' });
      hbars(el.merchants, (d.top_merchants || []).map((mm) => ({
        label: str(mm.merchant_name), value: mm.total_eur,
        valueText: fmtEur(mm.total_eur, 0) + ' · ' + fmtInt(mm.transactions) + ' tx',
        tip: `${str(mm.merchant_name)} (${str(mm.merchant_id)}, ${str(mm.category)})\n${fmtEur(mm.total_eur)} in ${fmtInt(mm.transactions)} transactions`,
      })), { unit: 'EUR, last 15 min' });
      const daily = d.daily || [];
      stackedBars(el.dailyChart, daily.slice().reverse().map((r) => ({ label: str(r.day).slice(5), tip: str(r.day), values: { volume: r.total_eur } })),
        [{ key: 'volume', color: '#6366f1' }], { unit: 'EUR', height: 330, valueLabels: daily.length <= 14, fmtV: (v) => fmtEur(v, 0) });
      setRows(dailyTable, dailyCols, daily);
      setRows(fraudTable, fraudCols, d.fraud || [], { empty: 'no fraud-like bursts' });
    }
    render();
    let resizeTimer = 0;
    const onResize = () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(render, 150); };
    addEventListener('resize', onResize);
    return { update: (kind) => kind === 'overview' && render(), destroy: () => removeEventListener('resize', onResize) };
  }
  /** Per-second series with absent seconds as 0, over the last 15 minutes. It ends at
   *  the newest second with data while that is recent: the seconds after it have not
   *  reached ClickHouse yet (pipeline lag), they are not zero. */
  function fillSeconds(tps, at) {
    if (!tps.length) return [];
    const byT = new Map(tps.map((p) => [Math.floor(p[0]), num(p[1]) || 0]));
    const newest = Math.floor(tps[tps.length - 1][0]), now = Math.floor(num(at) || 0) - 1;
    const last = now - newest <= 30 ? newest : Math.max(newest, now);
    const out = [];
    for (let t = last - 899; t <= last; t++) out.push([t, byT.get(t) || 0]);
    return out;
  }
  function volumeSlots(volume) {
    const byMinute = new Map(), currencies = new Set();
    for (const [t, cur, eur] of volume) {
      const key = Math.floor(t);
      if (!byMinute.has(key)) byMinute.set(key, {});
      byMinute.get(key)[cur] = (byMinute.get(key)[cur] || 0) + (num(eur) || 0);
      currencies.add(str(cur));
    }
    if (!byMinute.size) return { slots: [], keys: [] };
    const ts = [...byMinute.keys()];
    const slots = [];
    for (let t = Math.max(...ts) - 59 * 60; t <= Math.max(...ts); t += 60) {
      slots.push({ label: fmtTime(t, false), tip: fmtTime(t, false) + '–' + fmtTime(t + 60, false), values: byMinute.get(t) || {} });
    }
    const order = [...CURRENCY_ORDER.filter((c) => currencies.has(c)), ...[...currencies].filter((c) => !CURRENCY_ORDER.includes(c)).sort()];
    return { slots, keys: order.map((c, i) => ({ key: c, color: COLORS[c] || PALETTE[i % PALETTE.length] })) };
  }

  // ---------------------------------------------------------------- view: pipeline
  const STATE_KIND = { ok: 'ok', warn: 'warn', down: 'bad' };
  let lastVerify = null;

  function viewPipeline(main) {
    const flow = h('div', { class: 'flow' });
    const verifyBtn = h('button', { id: 'verify-button', class: 'btn primary', type: 'button' }, 'Verify');
    const verifyResult = h('div', { id: 'verify-result' },
      h('p', { class: 'muted' }, 'Verify waits until the warehouse has caught up, then reconciles PostgreSQL with silver and gold: row counts per table, and counts and sums per day (the same check as `findemo verify`).'));
    const root = h('div', { id: 'view-pipeline' },
      h('div', { class: 'view-head' }, h('h1', null, 'Pipeline'), h('span', { class: 'sub' }, 'PostgreSQL → Debezium → Kafka → ClickHouse bronze / silver / gold'),
        h('span', { class: 'right' }, h('span', { class: 'ago' }))),
      flow,
      card('Reconciliation', { ago: false, body: verifyResult, right: h('span', { style: 'margin-left:auto' }, verifyBtn) }));
    main.append(root);
    const cards = new Map();
    let fresh = null;

    function render() {
      const p = live.pipeline;
      if (!p) { if (!flow.firstChild) flow.append(h('div', { class: 'card empty', style: 'flex:1' }, 'waiting for the first pipeline figures…')); return; }
      setAgo(root, p.at);
      const stages = p.stages || [];
      const ids = stages.map((st) => str(st.id)).join(',');
      if (flow.dataset.ids !== ids) { // (re)build the skeleton only when the stage list changes
        flow.replaceChildren();
        cards.clear();
        stages.forEach((st, i) => {
          const c = h('section', { class: 'card stage', 'data-stage': str(st.id) });
          cards.set(str(st.id), c);
          if (i) flow.append(h('div', { class: 'flow-arrow', 'aria-hidden': 'true' }, '→'));
          flow.append(c);
        });
        fresh = h('section', { class: 'card fresh', id: 'freshness' });
        flow.append(h('div', { class: 'flow-arrow', 'aria-hidden': 'true' }, '⇒'), fresh);
        flow.dataset.ids = ids;
      }
      for (const st of stages) renderStage(cards.get(str(st.id)), st);
      const f = num(p.freshness_s);
      fresh.setAttribute('data-value', f == null ? '' : String(f));
      fresh.replaceChildren(h('div', { class: 'stage-name' }, 'Freshness'),
        h('div', { class: 'fresh-value', style: `color:${f == null ? 'var(--faint)' : f < 5 ? 'var(--ok)' : f < 30 ? 'var(--warn)' : 'var(--bad)'}` },
          f == null ? '—' : f < 10 ? nf(1).format(f) + ' s' : fmtInt(f) + ' s'),
        h('div', { class: 'stage-detail' }, 'age of the newest source change visible in silver'));
    }
    function renderStage(c, st) {
      const wasOpen = !!(c.querySelector('details') || {}).open;
      c.setAttribute('data-state', str(st.state));
      const figures = (st.figures || []).map((f) => h('tr', null, h('td', null, str(f[0])), h('td', null, str(f[1]))));
      c.replaceChildren();
      append(c, [
        h('div', { class: 'stage-head' }, h('span', { class: 'stage-name' }, str(st.name)), badge(str(st.state), STATE_KIND[st.state])),
        h('div', { class: 'stage-rate' }, fmtRate(st.rate), h('small', null, st.rate_unit ? str(st.rate_unit) : '')),
        h('div', { class: 'stage-detail' }, str(st.detail)),
        figures.length ? h('table', { class: 'figures' }, h('tbody', null, figures)) : null,
        (st.topics || []).length ? topicTable(st.topics) : null,
        st.trace ? h('details', { open: wasOpen }, h('summary', null, 'trace'), h('pre', null, str(st.trace))) : null]);
    }
    /** Kafka: one row per topic (data-topic = the topic's name), its end offset,
     *  events/s and the ClickHouse consumer group's lag. */
    function topicTable(topics) {
      const rows = topics.map((t) => {
        const cells = t.error
          ? [h('td', { colspan: '3', title: str(t.error) }, 'unknown')]
          : [h('td', { 'data-field': 'end_offset' }, fmtInt(t.end_offset)),
            h('td', { 'data-field': 'events_per_sec' }, fmtRate(t.events_per_sec)),
            h('td', { 'data-field': 'lag_events' }, fmtInt(t.lag_events))];
        return h('tr', { 'data-topic': str(t.topic), 'data-lag': t.lag_events == null ? '' : String(t.lag_events) },
          h('td', { title: str(t.topic) + ' (group ' + str(t.group) + ')' }, str(t.table)), ...cells);
      });
      return h('table', { class: 'figures topics' },
        h('thead', null, h('tr', null, h('th', null, 'topic'), h('th', null, 'end offset'), h('th', null, 'events/s'), h('th', null, 'lag'))),
        h('tbody', null, rows));
    }
    async function verify() {
      verifyBtn.disabled = true;
      verifyBtn.replaceChildren(h('span', { class: 'spinner' }), 'Verifying…');
      verifyResult.removeAttribute('data-agree');
      verifyResult.replaceChildren(h('p', { class: 'muted' }, 'Waiting for the warehouse to catch up, then comparing…'));
      try {
        lastVerify = await api('/api/verify', { method: 'POST' });
        if (root.isConnected) renderVerify(verifyResult, lastVerify);
      } catch (e) {
        verifyResult.replaceChildren(errorBox(e.message));
      } finally {
        verifyBtn.disabled = false;
        verifyBtn.replaceChildren('Verify');
      }
    }
    verifyBtn.addEventListener('click', verify);
    if (lastVerify) renderVerify(verifyResult, lastVerify);
    render();
    return { update: (kind) => kind === 'pipeline' && render() };
  }
  function renderVerify(el, v) {
    el.setAttribute('data-agree', String(!!v.agree));
    const tCols = [
      { label: 'Table', cell: (r) => str(r.table) }, { label: 'Source', num: 1, cell: (r) => fmtInt(r.source) },
      { label: 'Silver', num: 1, cell: (r) => fmtInt(r.silver), cls: (r) => (r.agree ? '' : 'diff') },
      { label: '', cell: (r) => badge(r.agree ? 'agree' : 'different', r.agree ? 'ok' : 'bad') },
    ];
    const part = (layer, field) => ({
      label: layer + ' ' + field, num: 1,
      cell: (r) => (r[layer] ? str(r[layer][field]) : layer === 'source' ? '—' : 'missing'),
      cls: (r) => (layer !== 'source' && (!r[layer] || str(r[layer][field]) !== str((r.source || {})[field])) ? 'diff' : ''),
    });
    const dCols = [{ label: 'Day', cell: (r) => str(r.day) }];
    for (const layer of ['source', 'silver', 'gold']) for (const f of ['n', 'amount', 'eur']) dCols.push(part(layer, f));
    dCols.push({ label: '', cell: (r) => badge(r.agree ? 'agree' : 'different', r.agree ? 'ok' : 'bad') });
    const tt = makeTable('verify-tables', tCols), dt = makeTable('verify-days', dCols);
    dt.tHead.replaceChildren( // two header rows: layer, then field
      h('tr', null, h('th', { rowspan: 2 }, 'Day'), ['Source', 'Silver', 'Gold'].map((l) => h('th', { colspan: 3, class: 'group' }, l)), h('th', { rowspan: 2 })),
      h('tr', null, [0, 1, 2].map(() => ['rows', 'amount', 'EUR'].map((f) => h('th', { class: 'num' }, f)))));
    setRows(tt, tCols, v.tables || [], { empty: 'no tables compared' });
    setRows(dt, dCols, v.days || [], { empty: 'no days compared' });
    el.replaceChildren(
      h('div', { class: 'verify-head ' + (v.agree ? 'ok' : 'bad') },
        v.agree ? '✓ Source and warehouse agree' : '✗ DIFFERENT: source and warehouse disagree',
        h('span', { class: 'muted', style: 'font-weight:400;font-size:12px;margin-left:10px' }, 'waited ' + fmtFixed(v.waited_secs, 1) + ' s for the warehouse to catch up')),
      h('div', { class: 'two' },
        h('div', { class: 'table-wrap' }, h('h3', { class: 'verify-sub' }, 'Rows per table'), tt),
        h('div', { class: 'table-wrap' }, h('h3', { class: 'verify-sub' }, 'Per day: count, amount as written, EUR'), dt)));
  }

  // ---------------------------------------------------------------- view: analytics
  const opts = (xs) => xs.map((x) => (Array.isArray(x) ? x : [x, x]));
  const COUNTRIES = ['AT', 'BE', 'BR', 'CN', 'DE', 'ES', 'FR', 'GB', 'IE', 'IT', 'NG', 'NL', 'PL', 'PT', 'RU', 'US', 'VN'];
  const TABS = {
    transactions: {
      title: 'Transactions', placeholder: 'Search id, account, merchant, IP, device…',
      filters: [['status', 'Any status', opts(['success', 'pending', 'failed'])], ['currency', 'Any currency', opts(['EUR', 'USD', 'GBP'])]],
      chips: ['account', 'merchant'],
      columns: [
        { label: 'Transaction', cell: (r) => txLink(r.transaction_id) },
        { label: 'Time', cell: (r) => fmtDateTime(r.ts) },
        { label: 'Account', cell: (r) => qLink(r.account_id, hashFor('transactions', { account: str(r.account_id) })) },
        { label: 'Merchant', cell: (r) => [str(r.merchant_name), ' ', h('span', { class: 'muted mono' }, str(r.merchant_id))] },
        { label: 'Amount', num: 1, cell: (r) => fmtFixed(r.amount, 2) + ' ' + str(r.currency) },
        { label: 'EUR', num: 1, cell: (r) => fmtEur(r.amount_eur) },
        { label: 'Status', cell: (r) => statusBadge(r.status) },
        { label: 'IP', cell: (r) => h('span', { class: 'mono' }, str(r.ip)) },
        { label: 'Device', cell: (r) => h('span', { class: 'mono' }, str(r.device_id)) },
      ],
    },
    merchants: {
      title: 'Merchants', placeholder: 'Search merchant id or name…',
      filters: [['category', 'Any category', opts(['Retail', 'Food', 'Travel', 'Electronics'])], ['risk', 'Any risk', opts(['1', '2', '3', '4', '5'])]],
      chips: [],
      columns: [
        { label: 'Merchant', cell: (r) => qLink(r.merchant_id, hashFor('transactions', { merchant: str(r.merchant_id) })) },
        { label: 'Name', cell: (r) => str(r.merchant_name) }, { label: 'Category', cell: (r) => str(r.merchant_category) },
        { label: 'Country', cell: (r) => str(r.country) }, { label: 'Risk', cell: (r) => riskBadge(r.risk_rating) },
        { label: 'Transactions', num: 1, cell: (r) => fmtInt(r.transactions) }, { label: 'Total (EUR)', num: 1, cell: (r) => fmtEur(r.total_eur) },
        { label: 'Failure rate', num: 1, cell: (r) => fmtPct(r.failure_rate) },
      ],
    },
    accounts: {
      title: 'Accounts', placeholder: 'Search account id, name, email…',
      filters: [['country', 'Any country', opts(COUNTRIES)]],
      chips: [],
      columns: [
        { label: 'Account', cell: (r) => qLink(r.account_id, hashFor('transactions', { account: str(r.account_id) })) },
        { label: 'User', cell: (r) => str(r.user_name) }, { label: 'Email', cell: (r) => str(r.email) },
        { label: 'Country', cell: (r) => str(r.country) }, { label: 'Signed up', cell: (r) => str(r.signup_date) },
        { label: 'Transactions', num: 1, cell: (r) => fmtInt(r.transactions) }, { label: 'Total (EUR)', num: 1, cell: (r) => fmtEur(r.total_eur) },
        { label: 'Devices', num: 1, cell: (r) => fmtInt(r.devices) }, { label: 'Proxy/VPN tx', num: 1, cell: (r) => fmtInt(r.proxy_transactions) },
      ],
    },
  };
  const PAGE_SIZE = 25;

  function viewAnalytics(main, rest, params) {
    const tab = TABS[rest[0]] ? rest[0] : 'transactions';
    const def = TABS[tab];
    const state = { q: params.get('q') || '', page: Math.max(0, parseInt(params.get('page'), 10) || 0), f: {} };
    for (const [key] of def.filters) state.f[key] = params.get(key) || '';
    for (const key of def.chips) state.f[key] = params.get(key) || '';

    const search = h('input', { id: 'search', class: 'input', type: 'search', placeholder: def.placeholder, value: state.q, autocomplete: 'off', spellcheck: 'false' });
    const selects = def.filters.map(([key, any, choices]) => {
      const sel = h('select', { id: 'filter-' + key, class: 'input', 'aria-label': key },
        h('option', { value: '' }, any), choices.map(([v, label]) => h('option', { value: v }, key === 'risk' ? 'Risk ' + label : label)));
      sel.value = state.f[key];
      sel.addEventListener('change', () => { state.f[key] = sel.value; state.page = 0; load(); });
      return sel;
    });
    const chips = h('span', { style: 'display:contents' });
    const table = makeTable('results', def.columns);
    const info = h('span', { id: 'page-info', 'data-total': '' }, '…');
    const elapsed = h('span', { class: 'elapsed' });
    const prev = h('button', { id: 'prev', class: 'btn', type: 'button', disabled: true }, '‹ Prev');
    const next = h('button', { id: 'next', class: 'btn', type: 'button', disabled: true }, 'Next ›');
    const err = h('div');
    const root = h('div', { id: 'view-analytics' },
      h('div', { class: 'view-head' }, h('h1', null, 'Analytics'), h('span', { class: 'sub' }, 'current rows in silver, with gold aggregates')),
      h('nav', { class: 'tabs' }, Object.keys(TABS).map((t) => h('a', { href: '#/analytics/' + t, 'data-tab': t, class: t === tab ? 'active' : null }, TABS[t].title))),
      h('section', { class: 'card' },
        h('div', { class: 'toolbar' }, search, selects, chips, h('div', { class: 'pager' }, elapsed, info, prev, next)),
        err, h('div', { class: 'table-wrap' }, table)));
    main.append(root);

    let timer = 0, ctrl = null;
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { state.q = search.value.trim(); state.page = 0; load(); }, 300); });
    prev.addEventListener('click', () => { if (state.page > 0) { state.page--; load(); } });
    next.addEventListener('click', () => { state.page++; load(); });

    function query() {
      const p = new URLSearchParams();
      if (state.q) p.set('q', state.q);
      for (const [k, v] of Object.entries(state.f)) if (v) p.set(k, v);
      if (state.page) p.set('page', String(state.page));
      return p;
    }
    function renderChips() {
      chips.replaceChildren(...def.chips.filter((k) => state.f[k]).map((k) => h('span', { class: 'chip' }, k + ': ' + state.f[k],
        h('button', { type: 'button', title: 'remove filter', onclick: () => { state.f[k] = ''; state.page = 0; load(); } }, '×'))));
    }
    async function load() {
      clearTimeout(timer);
      const p = query();
      const qs = p.toString();
      history.replaceState(null, '', '#/analytics/' + tab + (qs ? '?' + qs : ''));
      renderChips();
      p.set('page', String(state.page));
      p.set('size', String(PAGE_SIZE));
      if (ctrl) ctrl.abort();
      ctrl = new AbortController();
      table.classList.add('loading');
      try {
        const res = await api('/api/' + tab + '?' + p.toString(), { signal: ctrl.signal });
        err.replaceChildren();
        const rows = res.rows || [], total = num(res.total) || 0, size = num(res.size) || PAGE_SIZE, page = num(res.page) || 0;
        setRows(table, def.columns, rows, { empty: state.q || Object.values(state.f).some(Boolean) ? 'nothing matches' : 'no rows yet', rowAttrs: () => ({ 'data-row': '' }) });
        const from = rows.length ? page * size + 1 : 0;
        info.textContent = rows.length ? `${fmtInt(from)}–${fmtInt(page * size + rows.length)} of ${fmtInt(total)}` : `0 of ${fmtInt(total)}`;
        info.setAttribute('data-total', String(total));
        elapsed.textContent = num(res.elapsed_ms) == null ? '' : 'query took ' + fmtFixed(res.elapsed_ms, 1) + ' ms';
        prev.disabled = page <= 0;
        next.disabled = (page + 1) * size >= total;
      } catch (e) {
        if (e.name === 'AbortError') return;
        err.replaceChildren(h('div', { style: 'padding:0 12px' }, errorBox(e.message)));
        setRows(table, def.columns, [], { empty: 'no results' });
        info.textContent = '—';
        info.setAttribute('data-total', '');
        prev.disabled = state.page <= 0;
        next.disabled = true;
      } finally {
        table.classList.remove('loading');
      }
    }
    load();
    return { destroy: () => { clearTimeout(timer); if (ctrl) ctrl.abort(); } };
  }

  // ---------------------------------------------------------------- view: row history
  const OPS = { c: ['insert', 'ok'], u: ['update', 'warn'], d: ['delete', 'bad'], r: ['snapshot', 'info'] };
  const EVENT_FIELDS = ['status', 'amount', 'currency', 'merchant_id', 'deleted'];

  function viewTx(main, rest) {
    const id = rest.join('/');
    const events = h('div', null, h('p', { class: 'muted' }, 'loading…'));
    const currentCard = h('section', { class: 'card', id: 'tx-current', 'data-deleted': 'false' });
    const refresh = h('button', { class: 'btn', type: 'button' }, 'Refresh');
    const root = h('div', { id: 'view-tx' },
      h('div', { class: 'view-head' }, h('h1', null, 'Row history'), h('span', { class: 'sub mono' }, id),
        h('span', { class: 'right' }, h('a', { href: '#/analytics/transactions' }, '← Transactions'), refresh)),
      h('div', { class: 'tx-layout' }, card('Change events in bronze', { ago: false, body: events, unit: 'in LSN order' }), currentCard));
    main.append(root);
    const cols = [
      { label: 'Op', cell: (e) => badge((OPS[e.op] || [str(e.op)])[0], (OPS[e.op] || [])[1]) },
      { label: 'LSN', num: 1, cell: (e) => h('span', { class: 'mono' }, str(e.lsn)) },
      { label: 'Source time', cell: (e) => clock(num(e.source_ts_ms) == null ? null : e.source_ts_ms / 1000, true) },
      { label: 'Ingested', cell: (e) => clock(e.ingested_at, false) },
      { label: 'Delay', num: 1, title: 'ingested_at − source time', cell: (e) => (num(e.ingested_at) == null || num(e.source_ts_ms) == null ? '—' : fmtSecs(Math.max(0, e.ingested_at - e.source_ts_ms / 1000))) },
      ...EVENT_FIELDS.map((f) => ({ label: f === 'merchant_id' ? 'merchant' : f, num: f === 'amount', cell: (e) => str(e[f]), cls: (e, i) => changed(i, f) })),
    ];
    let list = [];
    const clock = (unix, ms) => { const t = fmtDateTime(unix, ms); return h('span', { title: t }, t.length > 11 ? t.slice(11) : t); };
    const changed = (i, f) => (i > 0 && str(list[i][f]) !== str(list[i - 1][f]) ? 'changed' : '');

    async function load() {
      refresh.disabled = true;
      try {
        const d = await api('/api/tx/' + encodeURIComponent(id));
        list = d.events || [];
        const table = makeTable('tx-events', cols);
        setRows(table, cols, list, { empty: 'no change events for this id in bronze (yet)', rowAttrs: (e) => ({ 'data-lsn': str(e.lsn) }) });
        events.replaceChildren(h('div', { class: 'table-wrap' }, table), h('p', { class: 'muted', style: 'margin:8px 0 0' }, 'Highlighted cells changed versus the previous event.'));
        renderCurrent(d);
      } catch (e) {
        events.replaceChildren(errorBox(e.message));
        currentCard.replaceChildren();
      } finally {
        refresh.disabled = false;
      }
    }
    function renderCurrent(d) {
      const c = d.current;
      currentCard.setAttribute('data-deleted', String(!!d.deleted));
      const rows = c ? [
        ['transaction id', h('span', { class: 'mono' }, str(c.transaction_id))], ['status', statusBadge(c.status)],
        ['time', fmtDateTime(c.ts)], ['account', qLink(c.account_id, hashFor('accounts', { q: str(c.account_id) }))],
        ['merchant', [str(c.merchant_name), ' ', h('span', { class: 'muted mono' }, str(c.merchant_id))]],
        ['amount', fmtFixed(c.amount, 2) + ' ' + str(c.currency)], ['amount (EUR)', fmtEur(c.amount_eur)],
        ['ip', h('span', { class: 'mono' }, str(c.ip))], ['device', h('span', { class: 'mono' }, str(c.device_id))],
      ] : [];
      currentCard.replaceChildren(
        h('div', { class: 'card-head' }, h('h2', null, 'Current row in silver'), d.deleted ? badge('deleted', 'bad') : c ? badge('current', 'ok') : null),
        h('div', { class: 'card-body' }, c
          ? h('table', { class: 'kv' }, h('tbody', null, rows.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v)))))
          : h('p', { class: 'muted' }, d.deleted ? 'This transaction was deleted in the source; silver keeps it only as a deletion.' : 'No current row in silver: deleted, or not arrived yet.')));
    }
    refresh.addEventListener('click', load);
    load();
    return {};
  }

  // ---------------------------------------------------------------- view: SQL pad
  const KEYWORDS = new Set(('select from where and or not in is null as by group order having limit offset join left right inner outer full cross on using ' +
    'union all distinct case when then else end asc desc with between like ilike exists interval array final prewhere sample format settings ' +
    'show tables databases describe desc explain create table view insert into values drop alter delete update true false any global').split(' '));
  const HISTORY_KEY = 'findemo.sql.history';
  const EXAMPLES = [
    ['Daily KPIs (gold)', 'SELECT *\nFROM gold.daily_kpis\nORDER BY day DESC\nLIMIT 14'],
    ['Top merchants by volume', 'SELECT merchant_name, merchant_category, transactions,\n       round(total_eur, 2) AS total_eur, round(failure_rate, 3) AS failure_rate\nFROM gold.merchant_metrics\nORDER BY total_eur DESC\nLIMIT 10'],
    ['Accounts with many devices', 'SELECT account_id, transactions, devices, ips, countries, proxy_transactions\nFROM gold.account_fraud_features\nWHERE devices >= 5\nORDER BY proxy_transactions DESC\nLIMIT 20'],
    ['Change events by operation (bronze)', "SELECT __op AS op, count() AS events\nFROM bronze.raw_transactions\nGROUP BY op\nORDER BY events DESC"],
    ['Status mix in silver', "SELECT status, count() AS n, round(sum(amount_eur), 2) AS eur\nFROM silver.transactions_current\nGROUP BY status\nORDER BY n DESC"],
  ];
  const TOKEN = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^'\\]|\\[\s\S]|'')*'?)|(`[^`]*`?|"[^"]*"?)|(\b0x[0-9a-fA-F]+\b|\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)(?=(\s*\())?|(\s+|[^\sA-Za-z0-9_'"`-]+|[\s\S])/y;

  /** Tokens of SQL text: [{cls, a, b}] with character offsets. */
  function tokenize(src) {
    const out = [];
    TOKEN.lastIndex = 0;
    let m;
    while (TOKEN.lastIndex < src.length && (m = TOKEN.exec(src))) {
      const a = m.index, b = TOKEN.lastIndex;
      let cls = '';
      if (m[1]) cls = 'tok-com'; else if (m[2]) cls = 'tok-str'; else if (m[3]) cls = 'tok-qid'; else if (m[4]) cls = 'tok-num';
      else if (m[5]) cls = KEYWORDS.has(m[5].toLowerCase()) ? 'tok-kw' : m[6] ? 'tok-fn' : 'tok-id';
      out.push({ cls, a, b });
    }
    if (!out.length || out[out.length - 1].b < src.length) out.push({ cls: '', a: out.length ? out[out.length - 1].b : 0, b: src.length });
    return out;
  }
  /** Highlighted text as DOM (text nodes only); err = [a, b) marks the error. */
  function highlight(pre, src, err) {
    const frag = document.createDocumentFragment();
    for (const t of tokenize(src)) {
      const cuts = [t.a, t.b];
      if (err) for (const c of err) if (c > t.a && c < t.b) cuts.push(c);
      cuts.sort((x, y) => x - y);
      for (let i = 0; i < cuts.length - 1; i++) {
        const a = cuts[i], b = cuts[i + 1];
        if (a === b) continue;
        const inErr = err && a >= err[0] && b <= err[1];
        const cls = [t.cls, inErr ? 'tok-err' : ''].join(' ').trim();
        frag.append(cls ? h('span', { class: cls }, src.slice(a, b)) : document.createTextNode(src.slice(a, b)));
      }
    }
    frag.append('\n'); // keeps the last line's height equal to the textarea's
    pre.replaceChildren(frag);
  }
  /** ClickHouse's error position (1-based, in UTF-8 bytes) -> a [start, end) character range. */
  function errorRange(src, pos) {
    if (num(pos) == null || pos < 1) return null;
    let bytes = 0, i = 0;
    while (i < src.length && bytes < pos - 1) { const cp = src.codePointAt(i); bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; i += cp > 0xffff ? 2 : 1; }
    if (i >= src.length) return [Math.max(0, src.length - 1), src.length];
    let j = i + 1;
    while (j < src.length && /[A-Za-z0-9_]/.test(src[i]) && /[A-Za-z0-9_]/.test(src[j])) j++;
    return [i, j];
  }
  /** RFC 4180 CSV of the shown result; a cell starting with = + - @ (a plain number aside) gets a leading ' so spreadsheets do not run it. */
  function toCsv(columns, rows) {
    const cell = (v) => {
      let t = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
      if (/^[=+\-@]/.test(t) && !/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t)) t = "'" + t;
      return /[",\r\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
    };
    return [columns.map((c) => cell(c.name)), ...rows.map((r) => r.map(cell))].map((r) => r.join(',')).join('\r\n') + '\r\n';
  }
  function loadHistory() {
    try { const x = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]'); return Array.isArray(x) ? x : []; } catch (_) { return []; }
  }
  function saveHistory(list) {
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(0, 50))); } catch (_) { /* storage full or disabled */ }
  }
  const NUMERIC_TYPE = /^(Nullable\()?(U?Int|Float|Decimal)/;

  function viewSql(main) {
    const history = loadHistory();
    const initial = history.length ? str(history[0].sql) : EXAMPLES[0][1];
    const pre = h('pre', { class: 'hl', 'aria-hidden': 'true' });
    const ta = h('textarea', { id: 'sql-input', spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off', wrap: 'off', 'aria-label': 'SQL query', value: initial });
    const run = h('button', { id: 'sql-run', class: 'btn primary', type: 'button' }, 'Run');
    const csvBtn = h('button', { id: 'sql-csv', class: 'btn', type: 'button', disabled: true }, 'Export CSV');
    const errEl = h('div', { id: 'sql-error', class: 'error-box', role: 'alert', hidden: true });
    const stats = h('div', { id: 'sql-stats', class: 'stats' });
    const trunc = h('div', { id: 'sql-truncated', class: 'note', hidden: true });
    const table = h('table', { id: 'sql-result', class: 'data' }, h('thead'), h('tbody'));
    const resultWrap = h('div', { id: 'sql-result-wrap', class: 'table-wrap', hidden: true }, table);
    const histList = h('ul', { id: 'sql-history', class: 'side-list' });
    const exList = h('ul', { class: 'side-list' }, EXAMPLES.map(([title, sql]) =>
      h('li', { class: 'ex', title: sql, onclick: () => setSql(sql) }, h('span', null, title), h('small', null, sql.replace(/\s+/g, ' ')))));
    const root = h('div', { id: 'view-sql' },
      h('div', { class: 'view-head' }, h('h1', null, 'SQL'), h('span', { class: 'sub' }, 'read-only queries on ClickHouse (bronze, silver, gold)')),
      h('div', { class: 'sql-layout' },
        h('div', null,
          h('section', { class: 'card' }, h('div', { class: 'card-body', style: 'padding:12px' },
            h('div', { class: 'editor' }, pre, ta),
            h('div', { class: 'sql-actions' }, run, h('span', { class: 'hint' }, 'Ctrl+Enter / ⌘+Enter runs'), h('span', { class: 'right' }, csvBtn)),
            errEl, stats, trunc, resultWrap))),
        h('div', { class: 'grid' },
          card('Examples', { ago: false, body: exList }),
          card('History', { ago: false, body: histList }))));
    main.append(root);
    for (const c of root.querySelectorAll('.side-list')) c.parentElement.classList.add('flush');

    let result = null, errRange = null, running = false;
    const paint = () => highlight(pre, ta.value, errRange);
    const sync = () => { pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; };
    function setSql(sql) { ta.value = sql; errRange = null; paint(); sync(); ta.focus(); }
    ta.addEventListener('input', () => { errRange = null; paint(); sync(); });
    ta.addEventListener('scroll', sync);
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); execute(); }
      else if (e.key === 'Tab' && !e.shiftKey) { e.preventDefault(); ta.setRangeText('  ', ta.selectionStart, ta.selectionEnd, 'end'); paint(); }
    });
    run.addEventListener('click', execute);
    csvBtn.addEventListener('click', () => {
      if (!result) return;
      const csv = toCsv(result.columns, result.rows);
      window.__lastCsv = csv;
      const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
      const a = h('a', { href: url, download: 'findemo-query.csv', hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });

    function renderHistory() {
      histList.replaceChildren(...(history.length ? history.map((it) =>
        h('li', { 'data-ok': String(!!it.ok), title: str(it.sql), onclick: () => setSql(str(it.sql)) },
          h('span', { class: 'mark' }, it.ok ? '✓' : '✗'), h('span', { class: 'q' }, str(it.sql).replace(/\s+/g, ' '))))
        : [h('li', { class: 'side-empty' }, 'queries you run appear here')]));
    }
    function remember(sql, ok) {
      const i = history.findIndex((it) => it.sql === sql);
      if (i >= 0) history.splice(i, 1);
      history.unshift({ sql, ok, at: Date.now() });
      history.length = Math.min(history.length, 50);
      saveHistory(history);
      renderHistory();
    }
    function renderResult(r) {
      const cols = r.columns || [], rows = r.rows || [];
      const isNum = cols.map((c) => NUMERIC_TYPE.test(str(c.type)));
      table.tHead.replaceChildren(h('tr', null, cols.map((c, i) => h('th', { class: isNum[i] ? 'num' : null, title: str(c.type) }, str(c.name), ' ', h('span', { style: 'font-weight:400;color:var(--faint)' }, str(c.type))))));
      table.tBodies[0].replaceChildren(...(rows.length ? rows.map((row) => h('tr', null, row.map((v, i) =>
        h('td', { class: isNum[i] ? 'num' : null, title: str(v).length > 40 ? str(v) : null }, v == null ? h('span', { class: 'muted' }, 'NULL') : str(v)))))
        : [h('tr', null, h('td', { class: 'empty-row', colspan: Math.max(1, cols.length) }, 'no rows'))]));
      resultWrap.hidden = false;
      const st = r.statistics || {};
      const n = num(r.rows_returned) == null ? rows.length : r.rows_returned;
      stats.textContent = `${fmtInt(n)} ${n === 1 ? 'row' : 'rows'} in ${fmtSecs(st.elapsed_s)}, read ${fmtInt(st.rows_read)} rows / ${fmtBytes(st.bytes_read)}`;
      trunc.hidden = !r.truncated;
      trunc.textContent = r.truncated ? `Result truncated to ${fmtInt(r.limit)} rows (the row limit): add a LIMIT or aggregate to see the rest.` : '';
    }
    async function execute() {
      const sql = ta.value.trim();
      if (!sql || running) return;
      running = true;
      run.disabled = true;
      run.replaceChildren(h('span', { class: 'spinner' }), 'Running…');
      errEl.hidden = true;
      try {
        result = await api('/api/sql', { method: 'POST', body: JSON.stringify({ sql: ta.value }) });
        errRange = null;
        renderResult(result);
        csvBtn.disabled = false;
        remember(sql, true);
      } catch (e) {
        result = null;
        csvBtn.disabled = true;
        resultWrap.hidden = true;
        stats.textContent = '';
        trunc.hidden = true;
        errEl.textContent = e.message;
        errEl.hidden = false;
        errRange = e.body ? errorRange(ta.value, e.body.position) : null;
        if (e.body) remember(sql, false); // an answer from ClickHouse, not a lost connection
      } finally {
        running = false;
        run.disabled = false;
        run.replaceChildren('Run');
        paint();
      }
    }
    paint();
    renderHistory();
    return {};
  }

  // ---------------------------------------------------------------- router
  const VIEWS = { overview: viewOverview, pipeline: viewPipeline, analytics: viewAnalytics, sql: viewSql, tx: viewTx };
  let current = null;

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const dec = (x) => { try { return decodeURIComponent(x); } catch (_) { return x; } };
    return { parts: path.split('/').filter(Boolean).map(dec), params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
  }
  function route() {
    const { parts, params } = parseHash();
    const name = parts[0] || 'overview';
    if (current && current.destroy) current.destroy();
    hideTip();
    const main = $('#main');
    main.replaceChildren();
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === name);
    const view = VIEWS[name];
    if (!view) {
      current = null;
      main.append(h('div', { class: 'card empty' }, 'No such page. ', h('a', { href: '#/' }, 'Back to the overview')));
      return;
    }
    current = view(main, parts.slice(1), params) || {};
    scrollTo(0, 0);
  }
  addEventListener('hashchange', route);
  route();
  startLive();
})();
