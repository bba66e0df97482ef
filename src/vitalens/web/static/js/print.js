// Print view: the Print button opens the browser's print dialog.
const b = document.getElementById('print-button');
if (b) b.addEventListener('click', () => window.print());
