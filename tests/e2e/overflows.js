// What overflows on a dashboard page (tests/e2e/test_browser_layout.py): a list of descriptions, empty when
// nothing does. Evaluated through DevTools, which the pages' Content-Security-Policy does not restrict.
(() => {
  const found = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const inScroller = (el) => { for (let p = el.parentElement; p; p = p.parentElement) { if (scrolls(p)) return true; } return false; };
  const root = document.scrollingElement || document.documentElement;
  if (root.scrollWidth > window.innerWidth + 1) {
    found.push(`the page is ${root.scrollWidth}px wide in a ${window.innerWidth}px window`);
  }
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg')) continue;
    const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!hasText || el.clientWidth === 0 || scrolls(el) || inScroller(el)) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name(el)} "${el.textContent.trim().slice(0, 60)}": ${el.scrollWidth}px of text in ${el.clientWidth}px`);
    }
  }
  for (const svg of document.querySelectorAll('svg')) {
    const box = svg.viewBox.baseVal;
    for (const text of svg.querySelectorAll('text')) {
      const b = text.getBBox();
      if (b.width && (b.x < box.x - 0.5 || b.x + b.width > box.x + box.width + 0.5)) {
        found.push(`${svg.id || svg.getAttribute('aria-labelledby')} text "${text.textContent}" spans x ${b.x.toFixed(1)}..${(b.x + b.width).toFixed(1)} outside 0..${box.width}`);
      }
    }
  }
  return found;
})()
