// Microphone dictation: MediaRecorder in the browser, transcription on the server (faster-whisper tiny.en); the draft
// goes into a text field for the clinician to check and edit. The recording is sent once and never stored.
import { api } from './api.js';

function pickType() {
  const types = ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4'];
  return types.find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || '';
}

// Wire ``button`` (toggle: start / stop) to record and transcribe; ``onText`` receives the transcript.
export function mountDictation({ button, status, url, onText, onError }) {
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    button.disabled = true;
    status.textContent = 'This browser cannot record audio (no MediaRecorder): type the note instead.';
    return;
  }
  let recorder = null;
  let chunks = [];
  const label = button.textContent;
  const setState = (state) => {
    button.dataset.state = state;
    button.setAttribute('aria-pressed', state === 'recording' ? 'true' : 'false');
    button.textContent = state === 'recording' ? '■ Stop dictation' : label;
    button.disabled = state === 'transcribing';
  };
  button.addEventListener('click', async () => {
    onError(null);
    if (recorder && recorder.state === 'recording') { recorder.stop(); return; }
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
    catch (err) { onError(new Error('The microphone could not be opened: allow it in the browser and retry.')); return; }
    const type = pickType();
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    chunks = [];
    recorder.addEventListener('dataavailable', (ev) => { if (ev.data.size) chunks.push(ev.data); });
    recorder.addEventListener('stop', async () => {
      stream.getTracks().forEach((t) => t.stop());
      setState('transcribing');
      status.textContent = 'Transcribing…';
      const blob = new Blob(chunks, { type: recorder.mimeType || type || 'audio/webm' });
      const form = new FormData();
      form.append('audio', blob, `dictation.${(blob.type.split('/')[1] || 'webm').split(';')[0]}`);
      try {
        const t = await api(url, { method: 'POST', form });
        onText(t.text);
        status.textContent = `Draft inserted (${t.duration_s.toFixed(1)} s, ${t.model}): check and edit it, then save.`;
      } catch (err) { onError(err); status.textContent = ''; }
      finally { setState('idle'); }
    });
    recorder.start(250);
    setState('recording');
    status.textContent = 'Recording… press the button again to stop.';
  });
}
