// silentmon console page: agents, sessions, audit, listening over WebRTC.
// Hand-written, no framework; every resource comes from smsupervisor.
'use strict';

(function () {
  // analyser: the audio played (after the balance); analyserAgent and
  // analyserCustomer: each side as received, when the stream has two tracks.
  const hook = { analyser: null, analyserAgent: null, analyserCustomer: null, sampleRate: 0, errors: [], delayMs: null, tracks: 0, format: '' };
  window.silentmon = hook;

  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = {
    config: { name: '', capture: true, listen: true },
    agents: [],
    agentsKey: '',
    sessions: [],
    levels: {},
    digits: {}, // session id -> the last telephone-event digits (at most 32)
    selected: null,
    recent: [], // sessions started here, oldest first
    play: null, // { session, pc, statsTimer, tracks, gains, nodes }
    es: null,
  };

  function caught(msg) {
    hook.errors.push(String(msg));
  }
  window.addEventListener('error', (e) => caught(e.message));
  window.addEventListener('unhandledrejection', (e) => caught(e.reason && e.reason.message ? e.reason.message : e.reason));

  // ---- banners -------------------------------------------------------
  const NOT_AUTHORISED = 'Not authorised: open the console with the URL smsupervisor printed at start (it holds the token).';

  function showError(text) {
    const el = $('#error');
    el.textContent = text;
    el.hidden = !text;
  }
  function showNotice(text) {
    const el = $('#notice');
    el.textContent = text;
    el.hidden = !text;
  }

  // ---- API -----------------------------------------------------------
  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (err) {
      return { ok: false, status: 0, error: 'smsupervisor did not answer: ' + err.message };
    }
    let data = {};
    try {
      data = await res.json();
    } catch (err) {
      data = {};
    }
    if (res.status === 401) {
      showError(NOT_AUTHORISED);
      return { ok: false, status: 401, error: NOT_AUTHORISED, body: data };
    }
    return { ok: res.ok, status: res.status, error: data.error || (res.ok ? '' : 'HTTP ' + res.status), body: data };
  }

  // ---- helpers -------------------------------------------------------
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function cell(row, field) {
    return row.querySelector('[data-field="' + field + '"]');
  }
  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }
  function fmt(n, digits) {
    return typeof n === 'number' && isFinite(n) ? n.toFixed(digits) : '–';
  }
  function listeningFor(agent) {
    return state.sessions.some((s) => s.agent === agent && s.state === 'listening');
  }

  // ---- agents --------------------------------------------------------
  function visibleAgents() {
    const q = $('#agent-filter').value.trim().toLowerCase();
    const list = state.agents.filter((a) => !q || [a.id, a.name || '', a.team || ''].some((v) => v.toLowerCase().includes(q)));
    return list.sort((a, b) => (a.team || '\uffff').localeCompare(b.team || '\uffff') || a.id.localeCompare(b.id));
  }

  function agentRow(a) {
    const tr = el('tr', { 'data-agent': a.id });
    tr.appendChild(el('th', { scope: 'row', 'data-field': 'id' }, a.id));
    tr.appendChild(el('td', { 'data-field': 'name' }));
    tr.appendChild(el('td', { 'data-field': 'team' }));
    const st = el('td', { 'data-field': 'state' });
    tr.appendChild(st);
    tr.appendChild(el('td', { 'data-field': 'calls' }));
    const act = el('td', { class: 'action' });
    const b = el('button', { type: 'button', 'data-action': 'listen', 'aria-label': 'Listen to agent ' + a.id }, 'Listen');
    b.addEventListener('click', () => {
      select(a.id);
      listen(a.id);
    });
    act.appendChild(b);
    tr.appendChild(act);
    tr.addEventListener('click', (e) => {
      if (e.target.tagName !== 'BUTTON') select(a.id);
    });
    return tr;
  }

  function fillAgent(tr, a) {
    setText(cell(tr, 'name'), a.name || '');
    setText(cell(tr, 'team'), a.team || '');
    const s = a.state || 'unknown';
    const st = cell(tr, 'state');
    setText(st, s);
    st.className = 'state state-' + s;
    const calls = a.calls || [];
    const c = cell(tr, 'calls');
    setText(c, String(calls.length));
    c.title = calls.map((x) => x.state + (x.peer ? ' with ' + x.peer : '') + (x.codecs ? ' (' + x.codecs.join(', ') + ')' : '')).join('; ');
    const b = tr.querySelector('button[data-action="listen"]');
    const busy = listeningFor(a.id);
    b.disabled = busy;
    b.textContent = busy ? 'Listening' : 'Listen';
    tr.classList.toggle('selected', state.selected === a.id);
    tr.setAttribute('aria-selected', state.selected === a.id ? 'true' : 'false');
  }

  function renderAgents() {
    const list = visibleAgents();
    const body = $('#agent-rows');
    const key = list.map((a) => (a.team || '') + '/' + a.id).join('|');
    if (key !== state.agentsKey) {
      state.agentsKey = key;
      const old = new Map();
      body.querySelectorAll('tr[data-agent]').forEach((tr) => old.set(tr.dataset.agent, tr));
      body.textContent = '';
      let team = null;
      for (const a of list) {
        if ((a.team || '') !== team) {
          team = a.team || '';
          const h = el('tr', { class: 'team' });
          h.appendChild(el('th', { colspan: '6', scope: 'rowgroup' }, team || 'No team'));
          body.appendChild(h);
        }
        body.appendChild(old.get(a.id) || agentRow(a));
      }
    }
    for (const a of list) {
      const tr = body.querySelector('tr[data-agent="' + CSS.escape(a.id) + '"]');
      if (tr) fillAgent(tr, a);
    }
    $('#agents .empty').hidden = state.agents.length > 0;
    if (state.selected && !list.some((a) => a.id === state.selected)) state.selected = null;
  }

  function onAgents(data) {
    state.agents = data.agents || [];
    if (data.error) {
      showError(data.error);
    } else if (/^no capture server|^not authorised to list/.test($('#error').textContent)) {
      showError('');
    }
    renderAgents();
  }

  function select(id) {
    state.selected = id;
    renderAgents();
    const tr = document.querySelector('tr[data-agent="' + CSS.escape(id) + '"]');
    if (tr && tr.scrollIntoView) tr.scrollIntoView({ block: 'nearest' });
  }

  function moveSelection(step) {
    const list = visibleAgents();
    if (!list.length) return;
    let i = list.findIndex((a) => a.id === state.selected);
    i = i < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + step));
    select(list[i].id);
  }

  // ---- sessions ------------------------------------------------------
  function sessionRow(s) {
    const tr = el('tr', { 'data-session': s.id });
    tr.appendChild(el('th', { scope: 'row', 'data-field': 'agent' }));
    // Stop comes first after the agent, so it stays in view on a narrow
    // panel.
    const act = el('td', { class: 'action' });
    const b = el('button', { type: 'button', 'data-action': 'stop', class: 'danger', 'aria-label': 'Stop session ' + s.id }, 'Stop');
    b.addEventListener('click', () => stop(s.id));
    act.appendChild(b);
    tr.appendChild(act);
    tr.appendChild(el('td', { 'data-field': 'state' }));
    tr.appendChild(el('td', { 'data-field': 'capture-server' }));
    tr.appendChild(el('td', { 'data-field': 'mos' }));
    tr.appendChild(el('td', { 'data-field': 'jitter' }));
    tr.appendChild(el('td', { 'data-field': 'loss' }));
    const lv = el('td', { class: 'levels' });
    for (const dir of ['agent', 'customer']) {
      const id = 'm-' + s.id + '-' + dir;
      const wrap = el('div', { class: 'meter' });
      wrap.appendChild(el('label', { for: id }, dir === 'agent' ? 'Agent' : 'Customer'));
      const m = el('meter', { id, 'data-level': dir, min: '-60', max: '0', low: '-30', high: '-6', optimum: '-20', value: '-60' });
      m.textContent = 'silent';
      wrap.appendChild(m);
      lv.appendChild(wrap);
    }
    // The balance sits under the meters it weighs: agent left, customer
    // right.
    const bal = el('div', { class: 'meter balance' });
    const bid = 'b-' + s.id;
    bal.appendChild(el('label', { for: bid, title: 'Balance between agent (left) and customer (right)' }, 'Balance'));
    const r = el('input', { type: 'range', id: bid, 'data-action': 'balance', min: '-1', max: '1', step: '0.1', value: '0', disabled: '' });
    r.title = 'Balance: agent only (left), both (middle) or customer only (right); available while this page plays the session';
    r.setAttribute('aria-valuetext', 'both');
    r.addEventListener('input', () => {
      const v = parseFloat(r.value);
      r.setAttribute('aria-valuetext', v <= -1 ? 'agent only' : v >= 1 ? 'customer only' : v === 0 ? 'both' : v < 0 ? 'more agent' : 'more customer');
      setBalance(s.id, v);
    });
    bal.appendChild(r);
    lv.appendChild(bal);
    tr.appendChild(lv);
    tr.appendChild(el('td', { 'data-field': 'delay-ms' }, '–'));
    return tr;
  }

  function fillSession(tr, s) {
    setText(cell(tr, 'agent'), s.agent);
    setText(cell(tr, 'capture-server'), s.capture_server || '–');
    const st = cell(tr, 'state');
    let label = s.state;
    if (s.state === 'listening' && s.streams.length === 0) label = 'waiting for a call';
    if (state.play && state.play.session === s.id && s.state === 'listening') {
      label += ' · in browser' + (state.play.format ? ' (' + state.play.format + ')' : '');
    }
    if (s.record) label += ' · recording';
    if (state.digits[s.id]) label += ' · digits ' + state.digits[s.id];
    setText(st, label);
    st.className = 'state state-' + s.state;
    const mos = s.streams.filter((x) => x.mos > 0).map((x) => x.mos);
    setText(cell(tr, 'mos'), mos.length ? fmt(Math.min(...mos), 2) : '–');
    const jit = s.streams.map((x) => x.jitter_ms);
    setText(cell(tr, 'jitter'), jit.length ? fmt(Math.max(...jit), 1) + ' ms' : '–');
    const loss = s.streams.map((x) => x.loss_network + x.loss_capture);
    setText(cell(tr, 'loss'), loss.length ? fmt(Math.max(...loss), 1) + ' %' : '–');
    const b = tr.querySelector('button[data-action="stop"]');
    b.disabled = s.state !== 'listening';
    tr.classList.toggle('stopped', s.state !== 'listening');
    const playing = !!(state.play && state.play.session === s.id);
    tr.classList.toggle('playing', playing);
    // The balance works while this page plays the session's two sides.
    const r = tr.querySelector('input[data-action="balance"]');
    const balance = playing && !!state.play.gains && s.state === 'listening';
    if (r.disabled === balance) {
      r.disabled = !balance;
      if (balance) setBalance(s.id, parseFloat(r.value));
    }
  }

  function renderSessions() {
    const body = $('#session-rows');
    const want = new Set(state.sessions.map((s) => s.id));
    body.querySelectorAll('tr[data-session]').forEach((tr) => {
      if (!want.has(tr.dataset.session)) tr.remove();
    });
    let prev = null;
    for (const s of state.sessions) {
      let tr = body.querySelector('tr[data-session="' + CSS.escape(s.id) + '"]');
      if (!tr) tr = sessionRow(s);
      const next = prev ? prev.nextSibling : body.firstChild;
      if (tr !== next) body.insertBefore(tr, next);
      fillSession(tr, s);
      prev = tr;
    }
    $('#sessions .empty').hidden = state.sessions.length > 0;
  }

  function onSessions(data) {
    state.sessions = data.sessions || [];
    const live = new Set(state.sessions.filter((s) => s.state === 'listening').map((s) => s.id));
    state.recent = state.recent.filter((id) => live.has(id));
    if (state.play && !live.has(state.play.session) && state.sessions.some((s) => s.id === state.play.session)) {
      stopPlayer();
    }
    renderSessions();
    renderAgents();
  }

  // A telephone event (RFC 4733) of a session's call: shown after its
  // state, the last 32 digits.
  function onDigit(d) {
    if (!d || typeof d.session !== 'string' || typeof d.digit !== 'string') return;
    state.digits[d.session] = ((state.digits[d.session] || '') + d.digit).slice(-32);
    renderSessions();
  }

  function onLevels(data) {
    state.levels = data || {};
    document.querySelectorAll('tr[data-session]').forEach((tr) => {
      const lv = state.levels[tr.dataset.session];
      for (const dir of ['agent', 'customer']) {
        const m = tr.querySelector('meter[data-level="' + dir + '"]');
        const v = lv ? Math.max(-60, Math.min(0, lv[dir])) : -60;
        m.value = v;
        m.textContent = lv ? lv[dir].toFixed(0) + ' dBFS' : 'silent';
        m.title = (dir === 'agent' ? 'Agent' : 'Customer') + ': ' + (lv ? lv[dir].toFixed(1) + ' dBFS' : 'silent');
      }
    });
  }

  // ---- listen and stop -----------------------------------------------
  function ensureAudioContext() {
    if (!state.audioCtx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (AC) state.audioCtx = new AC();
    }
    if (state.audioCtx && state.audioCtx.state === 'suspended') state.audioCtx.resume().catch(() => {});
    return state.audioCtx;
  }

  async function listen(agent) {
    if (!agent) return;
    if (listeningFor(agent)) {
      showNotice('Agent ' + agent + ' is already monitored here.');
      return;
    }
    const actx = ensureAudioContext(); // inside the user's gesture
    showError('');
    showNotice('Starting a session for agent ' + agent + '…');
    const record = $('#record').checked;
    const r = await api('POST', '/api/monitor', { agent, record });
    if (!r.ok) {
      showNotice('');
      if (r.status !== 401) showError(r.error);
      return;
    }
    const session = r.body.session;
    state.recent.push(session);
    if (!state.config.listen) {
      showNotice('');
      $('#listen-unavailable').hidden = false;
      return;
    }
    showNotice('Session ' + session + ' started; connecting the audio…');
    try {
      await play(session, actx);
      showNotice('');
    } catch (err) {
      showNotice('');
      showError('Listening in the browser failed: ' + err.message);
      caught(err.message);
      stopPlayer();
    }
  }

  function waitGathering(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === 'complete') {
          pc.removeEventListener('icegatheringstatechange', done);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, 3000); // send what was gathered
    });
  }

  // The role of a received track: the agent's side, the customer's, or
  // both mixed (a server that sends one track).
  function trackRole(ev) {
    const id = ev.streams && ev.streams[0] ? ev.streams[0].id : '';
    if (id === 'agent' || id === 'customer') return id;
    if (ev.track.id === 'agent' || ev.track.id === 'customer') return ev.track.id;
    return 'mixed';
  }

  // audioFormat names the audio an answer sends, from its first audio
  // section's first payload type: "Opus 16 kHz" (the rate from
  // sprop-maxcapturerate, the session's) or "PCMU 8 kHz"; '' if unknown.
  function audioFormat(sdp) {
    const lines = sdp.split(/\r?\n/);
    const m = lines.findIndex((l) => l.startsWith('m=audio '));
    if (m < 0) return '';
    const pt = lines[m].split(' ')[3];
    let name = '';
    let rate = 0;
    for (let i = m + 1; i < lines.length && !lines[i].startsWith('m='); i++) {
      const l = lines[i];
      if (l.startsWith('a=rtpmap:' + pt + ' ')) {
        const enc = l.slice(l.indexOf(' ') + 1).split('/');
        name = enc[0];
        rate = parseInt(enc[1], 10) || 0;
      }
      const cap = l.startsWith('a=fmtp:' + pt + ' ') && /sprop-maxcapturerate=(\d+)/.exec(l);
      if (cap) rate = parseInt(cap[1], 10);
    }
    if (!name) return '';
    if (name.toLowerCase() === 'opus') name = 'Opus';
    return rate ? name + ' ' + fmt(rate / 1000, rate % 1000 ? 1 : 0) + ' kHz' : name;
  }

  async function play(session, actx) {
    stopPlayer();
    const pc = new RTCPeerConnection({ iceServers: [] });
    const p = { session, pc, statsTimer: null, tracks: {}, gains: null, nodes: [] };
    state.play = p;
    // Two receive-only transceivers: the supervisor sends the agent's side
    // on the first and the customer's on the second, for the balance.
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addEventListener('track', (ev) => {
      p.tracks[trackRole(ev)] = ev.track;
    });
    pc.addEventListener('connectionstatechange', () => {
      if (state.play === p && (pc.connectionState === 'failed' || pc.connectionState === 'closed')) {
        if (pc.connectionState === 'failed') showError('The audio connection for session ' + session + ' failed.');
      }
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitGathering(pc);
    const res = await fetch('/api/webrtc/' + encodeURIComponent(session), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    if (res.status === 401) {
      showError(NOT_AUTHORISED);
      throw new Error('not authorised');
    }
    if (!res.ok) {
      let msg = 'HTTP ' + res.status;
      try {
        msg = (await res.json()).error || msg;
      } catch (e) {
        /* keep the status */
      }
      if (res.status === 501) $('#listen-unavailable').hidden = false;
      throw new Error(msg);
    }
    const answer = await res.text();
    if (state.play !== p) return; // stopped meanwhile
    // The track events fire while the answer is applied.
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    if (state.play !== p) return;
    p.format = audioFormat(answer);
    hook.format = p.format;
    wireAudio(p, actx);
    p.statsTimer = setInterval(() => updateDelay(p), 1000);
    renderSessions();
  }

  // wireAudio plays what the peer connection receives. With WebAudio, the
  // graph is each side's track → its gain (the balance) → a mix → the
  // speakers and window.silentmon.analyser; the <audio> element holds the
  // stream muted (Chromium feeds a remote track to WebAudio only while an
  // element holds it), so nothing plays twice. Without WebAudio the
  // element plays the tracks.
  function wireAudio(p, actx) {
    const t = p.tracks;
    const two = !!(t.agent && t.customer);
    const list = two ? [t.agent, t.customer] : [t.mixed || t.agent || t.customer].filter(Boolean);
    hook.tracks = list.length;
    if (!list.length) throw new Error('the supervisor sent no audio track');
    const player = $('#player');
    player.srcObject = new MediaStream(list);
    player.muted = !!actx;
    const pr = player.play();
    if (pr && pr.catch) pr.catch((err) => caught('audio playback: ' + err.message));
    const tr = document.querySelector('tr[data-session="' + CSS.escape(p.session) + '"]');
    const range = tr && tr.querySelector('input[data-action="balance"]');
    if (!actx) {
      if (range) {
        range.disabled = true;
        range.title = 'Balance: not available, this browser has no WebAudio';
      }
      return;
    }
    const mix = actx.createGain();
    const analyser = actx.createAnalyser();
    analyser.fftSize = 8192;
    mix.connect(actx.destination);
    mix.connect(analyser);
    p.nodes.push(mix);
    const source = (track) => {
      const src = actx.createMediaStreamSource(new MediaStream([track]));
      p.nodes.push(src);
      return src;
    };
    if (two) {
      const gains = [];
      for (const side of ['agent', 'customer']) {
        const src = source(t[side]);
        const g = actx.createGain();
        const a = actx.createAnalyser();
        a.fftSize = 8192;
        src.connect(a);
        src.connect(g);
        g.connect(mix);
        p.nodes.push(g);
        gains.push(g);
        hook[side === 'agent' ? 'analyserAgent' : 'analyserCustomer'] = a;
      }
      p.gains = gains;
      if (range) {
        range.disabled = false;
        setBalance(p.session, parseFloat(range.value));
      }
    } else {
      source(list[0]).connect(mix);
      hook.analyserAgent = hook.analyserCustomer = null;
      if (range) {
        range.disabled = true;
        range.title = 'Balance: not available, the stream mixes both directions';
      }
    }
    hook.analyser = analyser;
    hook.sampleRate = actx.sampleRate;
  }

  // setBalance weighs the two sides: -1 the agent only, 0 both at full
  // level, +1 the customer only.
  function setBalance(session, v) {
    const p = state.play;
    if (!p || p.session !== session || !p.gains || !isFinite(v)) return;
    p.gains[0].gain.value = Math.min(1, 1 - v);
    p.gains[1].gain.value = Math.min(1, 1 + v);
  }

  async function updateDelay(p) {
    if (state.play !== p) return;
    let jb = null;
    try {
      const stats = await p.pc.getStats();
      stats.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio' && r.jitterBufferEmittedCount > 0) {
          jb = (1000 * r.jitterBufferDelay) / r.jitterBufferEmittedCount;
        }
      });
    } catch (err) {
      return;
    }
    if (jb === null) return;
    const s = state.sessions.find((x) => x.id === p.session);
    const total = jb + (s && s.pipeline_ms ? s.pipeline_ms : 0);
    hook.delayMs = total;
    hook.browserDelayMs = jb;
    const tr = document.querySelector('tr[data-session="' + CSS.escape(p.session) + '"]');
    if (tr) {
      const c = cell(tr, 'delay-ms');
      setText(c, Math.round(total) + ' ms');
      c.title = 'Capture to browser playout: ' + Math.round(s && s.pipeline_ms ? s.pipeline_ms : 0) + ' ms to the supervisor, ' + Math.round(jb) + ' ms in the browser';
    }
  }

  function stopPlayer() {
    const p = state.play;
    if (!p) return;
    state.play = null;
    if (p.statsTimer) clearInterval(p.statsTimer);
    for (const n of p.nodes) {
      try {
        n.disconnect();
      } catch (e) {
        /* already disconnected */
      }
    }
    p.pc.close();
    const player = $('#player');
    player.srcObject = null;
    player.muted = false;
  }

  async function stop(session) {
    if (!session) return;
    if (state.play && state.play.session === session) stopPlayer();
    const r = await api('POST', '/api/stop', { session });
    if (!r.ok && r.status !== 401) {
      showError(r.error);
      return;
    }
    state.recent = state.recent.filter((id) => id !== session);
    showNotice('Session ' + session + ' stopped.');
  }

  // ---- audit ---------------------------------------------------------
  async function loadAudit() {
    const msg = $('#audit .audit-message');
    const r = await api('GET', '/api/audit?limit=200');
    const body = $('#audit-rows');
    body.textContent = '';
    if (!r.ok) {
      msg.textContent = r.error;
      msg.hidden = false;
      $('#audit .empty').hidden = true;
      return;
    }
    msg.hidden = true;
    const recs = (r.body.records || []).slice().reverse();
    for (const x of recs) {
      const tr = el('tr');
      tr.appendChild(el('td', {}, x.time ? new Date(x.time).toLocaleString() : ''));
      tr.appendChild(el('td', {}, x.action || ''));
      tr.appendChild(el('td', {}, x.result || ''));
      tr.appendChild(el('td', {}, x.agent || ''));
      tr.appendChild(el('td', {}, x.session_id || ''));
      tr.appendChild(el('td', {}, x.client_subject || x.supervisor || x.source || ''));
      body.appendChild(tr);
    }
    $('#audit .empty').hidden = recs.length > 0;
  }

  // ---- events --------------------------------------------------------
  function setConn(live, text) {
    const c = $('#conn');
    c.textContent = text || (live ? 'live' : 'offline');
    c.classList.toggle('on', live);
    c.classList.toggle('off', !live);
  }

  function connect() {
    if (state.es) state.es.close();
    const es = new EventSource('/api/events');
    state.es = es;
    es.addEventListener('open', () => setConn(true));
    es.addEventListener('error', async () => {
      setConn(false, es.readyState === EventSource.CONNECTING ? 'reconnecting' : 'offline');
      if (es.readyState === EventSource.CLOSED) {
        const r = await api('GET', '/api/config');
        if (r.status !== 401) setTimeout(connect, 3000);
      }
    });
    const on = (name, f) =>
      es.addEventListener(name, (e) => {
        try {
          f(JSON.parse(e.data));
        } catch (err) {
          caught(name + ' event: ' + err.message);
        }
      });
    on('agents', onAgents);
    on('sessions', onSessions);
    on('levels', onLevels);
    on('digit', onDigit);
  }

  // ---- keyboard ------------------------------------------------------
  function onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    switch (e.key) {
      case 'l':
      case 'L': {
        const list = visibleAgents();
        const id = state.selected || (list[0] && list[0].id);
        if (id) listen(id);
        break;
      }
      case 's':
      case 'S': {
        const live = state.recent.length ? state.recent[state.recent.length - 1] : (state.sessions.find((s) => s.state === 'listening') || {}).id;
        if (live) stop(live);
        break;
      }
      case 'ArrowDown':
        moveSelection(1);
        break;
      case 'ArrowUp':
        moveSelection(-1);
        break;
      case '?':
        toggleHelp();
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  function toggleHelp() {
    const h = $('#help');
    h.hidden = !h.hidden;
    $('#help-button').setAttribute('aria-expanded', String(!h.hidden));
  }

  // ---- start ---------------------------------------------------------
  async function init() {
    document.addEventListener('keydown', onKey);
    $('#help-button').addEventListener('click', toggleHelp);
    $('#audit-refresh').addEventListener('click', loadAudit);
    $('#agent-filter').addEventListener('input', () => {
      state.agentsKey = '';
      renderAgents();
    });
    const r = await api('GET', '/api/config');
    if (r.status === 401) {
      setConn(false, 'not authorised');
      return;
    }
    if (r.ok) {
      state.config = r.body;
      setText($('#name'), r.body.name || '');
      document.title = 'silentmon console · ' + (r.body.name || 'supervisor');
      if (!r.body.capture) showError('no capture server configured: start smsupervisor with --console-server HOST:PORT');
    }
    renderAgents();
    renderSessions();
    connect();
    loadAudit();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
