// Annotation canvas over an image input: box, polygon and brush regions with a label each, undo, zoom and pan.
// Regions are in image pixel coordinates (x right, y down) and saved through the annotations API as soon as they
// are finished; reloading the page draws them again from the API.
import { api, showError } from './api.js';

const COLOURS = ['#ffd400', '#00e5ff', '#ff4fd8', '#7CFC00', '#ff8c00'];
const MAX_POINTS = 400;

export function mountAnnotator(el) {
  const canvas = el.querySelector('canvas');
  const ctx = canvas.getContext('2d');
  const toolSel = el.querySelector('select.tool');
  const labelIn = el.querySelector('input.label');
  const statusEl = el.querySelector('.status-line');
  const errorEl = el.querySelector('.error');
  const listEl = el.querySelector('ul.regions');
  const editable = el.dataset.editable === 'true';
  const W = Number(el.dataset.width) || 512;
  const H = Number(el.dataset.height) || 512;
  const img = new Image();
  const view = { scale: 1, ox: 0, oy: 0, base: 1 };
  let regions = []; // {id, shape, geometry, label}
  const undoStack = []; // ids created in this session, newest last
  let draft = null; // region being drawn
  let panFrom = null;

  const clampX = (x) => Math.min(W, Math.max(0, x));
  const clampY = (y) => Math.min(H, Math.max(0, y));

  function size() {
    const cssW = Math.min(el.clientWidth || 512, 640);
    canvas.width = Math.round(cssW);
    canvas.height = Math.round(cssW * H / W);
    view.base = canvas.width / W;
    draw();
  }

  function toImage(ev) {
    const r = canvas.getBoundingClientRect();
    const cx = (ev.clientX - r.left) * (canvas.width / r.width);
    const cy = (ev.clientY - r.top) * (canvas.height / r.height);
    const s = view.base * view.scale;
    return [clampX((cx - view.ox) / s), clampY((cy - view.oy) / s)];
  }

  function pathOf(region) {
    const g = region.geometry;
    ctx.beginPath();
    if (region.shape === 'box') ctx.rect(g.x0, g.y0, g.x1 - g.x0, g.y1 - g.y0);
    if (region.shape === 'polygon') {
      g.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (!region.open) ctx.closePath();
    }
  }

  function drawRegion(region, colour) {
    const s = view.base * view.scale;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2 / s;
    if (region.shape === 'brush') {
      ctx.globalAlpha = 0.45;
      for (const st of region.geometry.strokes) {
        ctx.lineWidth = st.radius * 2;
        ctx.lineCap = 'round';
        ctx.lineJoin = 'round';
        ctx.beginPath();
        st.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        if (st.points.length === 1) ctx.lineTo(st.points[0][0] + 0.01, st.points[0][1]);
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
    } else {
      pathOf(region);
      ctx.globalAlpha = 0.18;
      if (!region.open) ctx.fill();
      ctx.globalAlpha = 1;
      ctx.stroke();
    }
    const anchor = region.shape === 'box' ? [region.geometry.x0, region.geometry.y0]
      : region.shape === 'polygon' ? region.geometry.points[0] : region.geometry.strokes[0].points[0];
    if (region.label && anchor) {
      ctx.font = `${14 / s}px sans-serif`;
      ctx.fillStyle = '#000';
      ctx.fillText(region.label, anchor[0] + 1 / s, anchor[1] - 3 / s + 1 / s);
      ctx.fillStyle = colour;
      ctx.fillText(region.label, anchor[0], anchor[1] - 3 / s);
    }
  }

  function draw() {
    const s = view.base * view.scale;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#111';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(s, 0, 0, s, view.ox, view.oy);
    if (img.complete && img.naturalWidth) ctx.drawImage(img, 0, 0, W, H);
    regions.forEach((r, i) => drawRegion(r, COLOURS[i % COLOURS.length]));
    if (draft) drawRegion(draft, '#ffffff');
  }

  // Each saved region's label can be edited in place: the edit is a new version of the annotation (PUT), the
  // earlier label stays in its history.
  function renderList() {
    listEl.replaceChildren(...regions.map((r) => {
      const li = document.createElement('li');
      const text = document.createElement('span');
      text.className = 'region-text';
      text.textContent = `${r.shape}: ${r.label || '(no label)'}${r.version > 1 ? ` (edited, v${r.version})` : ''}`;
      li.appendChild(text);
      if (editable) {
        const edit = document.createElement('button');
        edit.type = 'button';
        edit.className = 'small secondary edit-label';
        edit.textContent = 'Edit label';
        edit.setAttribute('aria-label', `Edit the label of ${r.shape} “${r.label || 'no label'}”`);
        edit.addEventListener('click', () => editLabel(li, r));
        li.appendChild(edit);
      }
      return li;
    }));
    el.dataset.count = String(regions.length);
  }

  function editLabel(li, r) {
    const input = document.createElement('input');
    input.className = 'label-edit';
    input.maxLength = 200;
    input.value = r.label || '';
    input.setAttribute('aria-label', `New label for the ${r.shape}`);
    const ok = document.createElement('button');
    ok.type = 'button';
    ok.className = 'small save-label';
    ok.textContent = 'Save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'small secondary';
    cancel.textContent = 'Cancel';
    const commit = async () => {
      showError(errorEl, null);
      const label = input.value.trim();
      try {
        const row = await api(`/api/v1/annotations/${r.id}`, { method: 'PUT', json: { label } });
        Object.assign(r, { id: row.id, label: row.label, version: row.version });
        statusEl.textContent = `Label changed to “${label || 'no label'}”.`;
        renderList();
        draw();
      } catch (err) { showError(errorEl, err); }
    };
    ok.addEventListener('click', commit);
    cancel.addEventListener('click', renderList);
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); commit(); }
      if (ev.key === 'Escape') { ev.preventDefault(); renderList(); }
    });
    li.replaceChildren(input, ok, cancel);
    input.focus();
  }

  async function save(shape, geometry) {
    showError(errorEl, null);
    const label = labelIn.value.trim();
    try {
      const row = await api(`/api/v1/inputs/${el.dataset.inputId}/annotations`, { method: 'POST', json: { shape, geometry, label } });
      regions.push({ id: row.id, shape: row.shape, geometry: row.geometry, label: row.label, version: row.version });
      undoStack.push(row.id);
      statusEl.textContent = `Saved ${shape} “${label || 'no label'}”.`;
      renderList();
    } catch (err) { showError(errorEl, err); }
    draw();
  }

  async function undo() {
    showError(errorEl, null);
    if (draft) { draft = null; draw(); return; }
    const id = undoStack.pop() || (regions.length ? regions[regions.length - 1].id : null);
    if (!id) { statusEl.textContent = 'Nothing to undo.'; return; }
    try {
      await api(`/api/v1/annotations/${id}`, { method: 'DELETE' });
      regions = regions.filter((r) => r.id !== id);
      statusEl.textContent = 'Removed the last region.';
      renderList();
      draw();
    } catch (err) { showError(errorEl, err); }
  }

  function finishPolygon() {
    if (!draft || draft.shape !== 'polygon') return;
    const pts = draft.geometry.points;
    draft = null;
    if (pts.length >= 3) save('polygon', { points: pts });
    else { statusEl.textContent = 'A polygon needs at least three points.'; draw(); }
  }

  function zoom(factor, cx = canvas.width / 2, cy = canvas.height / 2) {
    const next = Math.min(8, Math.max(1, view.scale * factor));
    const f = next / view.scale;
    view.ox = cx - (cx - view.ox) * f;
    view.oy = cy - (cy - view.oy) * f;
    view.scale = next;
    if (next === 1) { view.ox = 0; view.oy = 0; }
    draw();
  }

  canvas.addEventListener('pointerdown', (ev) => {
    canvas.focus();
    const tool = toolSel.value;
    if (tool === 'pan' || ev.button === 1) { panFrom = [ev.clientX, ev.clientY, view.ox, view.oy]; return; }
    if (!editable) return;
    const p = toImage(ev);
    if (tool === 'box') draft = { shape: 'box', geometry: { x0: p[0], y0: p[1], x1: p[0], y1: p[1] }, start: p, label: labelIn.value };
    if (tool === 'brush') draft = { shape: 'brush', geometry: { strokes: [{ points: [p], radius: Math.max(2, W / 100) }] }, label: labelIn.value };
    if (tool === 'polygon') {
      if (!draft || draft.shape !== 'polygon') draft = { shape: 'polygon', open: true, geometry: { points: [] }, label: labelIn.value };
      if (draft.geometry.points.length < MAX_POINTS) draft.geometry.points.push(p);
      statusEl.textContent = `Polygon: ${draft.geometry.points.length} point(s); press Enter or double-click to close.`;
    }
    if (tool !== 'polygon') canvas.setPointerCapture(ev.pointerId);
    draw();
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (panFrom) {
      const r = canvas.getBoundingClientRect();
      const k = canvas.width / r.width;
      view.ox = panFrom[2] + (ev.clientX - panFrom[0]) * k;
      view.oy = panFrom[3] + (ev.clientY - panFrom[1]) * k;
      draw();
      return;
    }
    if (!draft) return;
    const p = toImage(ev);
    if (draft.shape === 'box') {
      const [sx, sy] = draft.start;
      Object.assign(draft.geometry, { x0: Math.min(sx, p[0]), y0: Math.min(sy, p[1]), x1: Math.max(sx, p[0]), y1: Math.max(sy, p[1]) });
      draw();
    } else if (draft.shape === 'brush' && ev.buttons) {
      const pts = draft.geometry.strokes[0].points;
      if (pts.length < MAX_POINTS) pts.push(p);
      draw();
    }
  });
  canvas.addEventListener('pointerup', () => {
    if (panFrom) { panFrom = null; return; }
    if (!draft || draft.shape === 'polygon') return;
    const d = draft;
    draft = null;
    if (d.shape === 'box') {
      const g = d.geometry;
      if (g.x1 - g.x0 >= 1 && g.y1 - g.y0 >= 1) save('box', { x0: g.x0, y0: g.y0, x1: g.x1, y1: g.y1 });
      else draw();
    } else if (d.shape === 'brush') save('brush', { strokes: d.geometry.strokes });
  });
  canvas.addEventListener('dblclick', (ev) => { ev.preventDefault(); finishPolygon(); });
  canvas.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const r = canvas.getBoundingClientRect();
    const k = canvas.width / r.width;
    zoom(ev.deltaY < 0 ? 1.25 : 0.8, (ev.clientX - r.left) * k, (ev.clientY - r.top) * k);
  }, { passive: false });
  canvas.addEventListener('keydown', (ev) => {
    const step = 20;
    if (ev.key === 'Enter') { ev.preventDefault(); finishPolygon(); }
    else if (ev.key === 'Escape') { draft = null; draw(); }
    else if (ev.key === '+' || ev.key === '=') zoom(1.25);
    else if (ev.key === '-') zoom(0.8);
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === 'z') { ev.preventDefault(); undo(); }
    else if (ev.key.startsWith('Arrow')) {
      ev.preventDefault();
      if (ev.key === 'ArrowLeft') view.ox += step;
      if (ev.key === 'ArrowRight') view.ox -= step;
      if (ev.key === 'ArrowUp') view.oy += step;
      if (ev.key === 'ArrowDown') view.oy -= step;
      draw();
    }
  });
  el.querySelector('.undo').addEventListener('click', undo);
  el.querySelector('.zoom-in').addEventListener('click', () => zoom(1.25));
  el.querySelector('.zoom-out').addEventListener('click', () => zoom(0.8));
  el.querySelector('.zoom-reset').addEventListener('click', () => { view.scale = 1; view.ox = 0; view.oy = 0; draw(); });
  if (!editable) { el.querySelector('.undo').disabled = true; }

  img.addEventListener('load', draw);
  img.src = el.dataset.src;
  window.addEventListener('resize', size);
  size();
  api(`/api/v1/studies/${el.dataset.studyId}/annotations?input_id=${encodeURIComponent(el.dataset.inputId)}`)
    .then((rows) => {
      regions = (rows || []).map((r) => ({ id: r.id, shape: r.shape, geometry: r.geometry, label: r.label, version: r.version }))
        .filter((r) => ['box', 'polygon', 'brush'].includes(r.shape));
      renderList();
      el.dataset.loaded = 'true';
      draw();
    })
    .catch((err) => showError(errorEl, err));
}
