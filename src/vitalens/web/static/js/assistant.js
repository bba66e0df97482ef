// Study assistant chat: questions streamed as server-sent events, answers with clickable citations into the results
// page (an analyzer's section, its model card, the review, the note) or the knowledge base; conversations reloaded.
import { api, ApiError, csrfToken, showError } from './api.js';

const panel = document.getElementById('assistant');

const TIERS = {
  llm: (a) => `Written by ${a.model || 'the configured language model'} from the numbered sources.`,
  template: () => 'Assembled by templates from the sources (no language model wrote it).',
  refusal: () => 'Not answered: vitalens gives no dosage, prescribing or treatment advice.',
};

// Where a citation's anchor points on this page ("#result-ecg.intervals" → that analyzer's section).
export function citationTarget(anchor) {
  if (!anchor || !anchor.startsWith('#')) return null;
  const [kind, ...rest] = anchor.slice(1).split('-');
  const name = rest.join('-');
  if (kind === 'result' || kind === 'card') {
    const section = Array.from(document.querySelectorAll('section[data-analyzer]')).find((s) => s.dataset.analyzer === name);
    if (!section) return null;
    if (kind === 'card') {
      const card = section.querySelector('details.model-card');
      if (card) { card.open = true; return card; }
    }
    return section;
  }
  if (kind === 'review') return document.getElementById('review-h')?.closest('section') || null;
  return document.getElementById(anchor.slice(1));
}

function citationLink(c) {
  const a = document.createElement('a');
  a.className = 'cite-link';
  a.textContent = `[${c.number}]`;
  a.title = `${c.title} — ${c.source}`;
  a.dataset.passageId = c.passage_id;
  a.href = c.anchor || '#';
  if (c.anchor && !c.anchor.startsWith('#')) { a.target = '_blank'; a.rel = 'noopener'; }
  else {
    a.addEventListener('click', (ev) => {
      const target = citationTarget(c.anchor);
      if (!target) return;
      ev.preventDefault();
      target.scrollIntoView({ behavior: 'smooth', block: 'start' });
      target.classList.add('cited');
      setTimeout(() => target.classList.remove('cited'), 2000);
    });
  }
  return a;
}

// Text with "[n]" markers → nodes, each marker a link to citation n (text is never parsed as HTML); "- " lines
// become one list.
function renderText(el, text, citations) {
  const byNumber = new Map((citations || []).map((c) => [c.number, c]));
  el.replaceChildren();
  let list = null;
  for (const line of String(text).split('\n')) {
    if (!line.trim()) continue;
    const item = line.startsWith('- ');
    const p = document.createElement(item ? 'li' : 'p');
    const body = item ? line.slice(2) : line;
    let last = 0;
    for (const m of body.matchAll(/\[(\d{1,2})\]/g)) {
      p.append(body.slice(last, m.index));
      const c = byNumber.get(Number(m[1]));
      p.append(c ? citationLink(c) : m[0]);
      last = m.index + m[0].length;
    }
    p.append(body.slice(last));
    if (item) {
      if (!list) { list = document.createElement('ul'); el.append(list); }
      list.append(p);
    } else { list = null; el.append(p); }
  }
}

function sourcesList(citations) {
  const ol = document.createElement('ol');
  ol.className = 'sources';
  for (const c of citations) {
    const li = document.createElement('li');
    li.value = c.number;
    li.append(citationLink(c), ` ${c.title} `);
    const src = document.createElement('cite');
    src.textContent = c.source;
    li.append(src);
    ol.append(li);
  }
  return ol;
}

function turn(role) {
  const li = document.createElement('li');
  li.className = `turn ${role}`;
  const who = document.createElement('p');
  who.className = 'who-said';
  who.textContent = role === 'user' ? 'You' : 'Assistant';
  const body = document.createElement('div');
  body.className = 'said';
  li.append(who, body);
  document.getElementById('chat-log').append(li);
  return { li, body };
}

function finishAnswer(t, answer) {
  t.li.dataset.tier = answer.tier;
  renderText(t.body, answer.text, answer.citations);
  const tier = document.createElement('p');
  tier.className = 'tier hint';
  tier.textContent = (TIERS[answer.tier] || (() => ''))(answer);
  t.li.append(tier);
  for (const w of answer.warnings || []) {
    const p = document.createElement('p');
    p.className = 'hint warning';
    p.textContent = w;
    t.li.append(p);
  }
  if ((answer.citations || []).length) t.li.append(sourcesList(answer.citations));
}

async function streamQuestion(studyId, body, t) {
  const res = await fetch(`/api/v1/studies/${studyId}/assistant`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new ApiError(res.status, (data && data.detail) || `The server answered ${res.status}.`, data && data.field);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let draft = '';
  let final = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const fields = Object.fromEntries(block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      const data = JSON.parse(fields.data || '{}');
      if (fields.event === 'delta') { draft += data.text; t.body.textContent = draft; }
      else if (fields.event === 'final') final = data;
      else if (fields.event === 'error') throw new ApiError(502, data.detail, null);
    }
  }
  if (!final) throw new ApiError(502, 'The answer was interrupted: ask again.', null);
  return final;
}

if (panel && document.getElementById('chat-form')) {
  const studyId = panel.dataset.studyId;
  const form = document.getElementById('chat-form');
  const input = document.getElementById('chat-question');
  const send = document.getElementById('chat-send');
  const errorEl = document.getElementById('chat-error');
  let conversationId = null;

  const ask = async (question) => {
    showError(errorEl, null);
    send.disabled = true;
    const q = turn('user');
    q.body.textContent = question;
    const t = turn('assistant');
    t.body.textContent = '…';
    const body = { question, conversation_id: conversationId };
    try {
      let final;
      try { final = await streamQuestion(studyId, body, t); }
      catch (err) {
        if (err.status !== 401) throw err;
        final = await api(`/api/v1/studies/${studyId}/assistant`, { method: 'POST', json: body }); // refreshes the session
      }
      conversationId = final.conversation_id;
      finishAnswer(t, final.answer);
      input.value = '';
    } catch (err) {
      t.li.remove();
      showError(errorEl, err);
    } finally { send.disabled = false; }
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const question = input.value.trim();
    if (question) ask(question);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById('chat-new').addEventListener('click', () => {
    conversationId = null;
    document.getElementById('chat-log').replaceChildren();
  });

  // the newest conversation about this study, as it was stored
  (async () => {
    try {
      const list = await api(`/api/v1/studies/${studyId}/assistant/conversations`);
      if (!list.length) return;
      const conv = await api(`/api/v1/studies/${studyId}/assistant/conversations/${list[0].id}`);
      conversationId = conv.id;
      for (const m of conv.messages) {
        const t = turn(m.role);
        if (m.role === 'user') t.body.textContent = m.text;
        else finishAnswer(t, m);
      }
    } catch (err) { /* the panel still works for a new conversation */ }
  })();
}
