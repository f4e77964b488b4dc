
(function () {
  const pairs = JSON.parse(document.getElementById('pairs').textContent);
  const study = document.body.dataset.study;
  const key = 'monosemantic-study-' + study;
  let answers = new Array(pairs.length).fill(null);
  try { const saved = JSON.parse(localStorage.getItem(key) || 'null');
        if (Array.isArray(saved) && saved.length === pairs.length) answers = saved; } catch (e) { /* private mode */ }
  const quote = (s) => /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  function csv() {
    const lines = ['unit_x,unit_y,R_user'];
    pairs.forEach((p, i) => { if (answers[i] !== null) lines.push([quote(p.x), quote(p.y), answers[i]].join(',')); });
    return lines.join('\n') + '\n';
  }
  function render() {
    let done = 0;
    pairs.forEach((p, i) => {
      const el = document.getElementById('p' + i);
      const r = answers[i];
      if (r !== null) done += 1;
      el.classList.toggle('done', r !== null);
      const xLeft = !p.swap;
      el.querySelector('.side.left').classList.toggle('picked', r !== null && r !== 0 && (r > 0) === xLeft);
      el.querySelector('.side.right').classList.toggle('picked', r !== null && r !== 0 && (r > 0) !== xLeft);
    });
    document.getElementById('progress').textContent = done + ' of ' + pairs.length + ' answered';
    document.getElementById('csv').textContent = csv();  // a readonly textarea: its text is its value
    document.body.dataset.answered = String(done);
    try { localStorage.setItem(key, JSON.stringify(answers)); } catch (e) { /* private mode */ }
  }
  function choose(i, side) {
    const xLeft = !pairs[i].swap;
    answers[i] = side === 'tie' ? 0 : ((side === 'left') === xLeft ? 1 : -1);
    render();
  }
  document.querySelectorAll('.choices button').forEach((b) => b.addEventListener('click', () =>
    choose(Number(b.dataset.pair), b.dataset.side)));
  document.getElementById('download').addEventListener('click', () => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([csv()], {type: 'text/csv'}));
    a.download = 'pairs.csv';
    document.body.appendChild(a); a.click(); a.remove();
  });
  // #answers=LRT...: one letter per pair (left, right, tie), for scripted runs of the page
  const m = location.hash.match(/answers=([LRT]+)/);
  if (m) [...m[1]].forEach((c, i) => { if (i < pairs.length) choose(i, {L: 'left', R: 'right', T: 'tie'}[c]); });
  render();
  document.body.dataset.ready = '1';
})();
